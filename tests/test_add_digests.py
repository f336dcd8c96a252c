"""``feedbot add --tag/--digest`` and OPML folders as tags, through the real CLI.

``add --tag T`` writes the new feed's ``tags``; ``add --digest NAME`` makes a
``[[digests]]`` table take it (its name added to the table's ``feeds``), and
every byte outside the edited tables stays as it was.  ``opml import`` writes
each outline's folder as a tag; ``opml export`` writes the tags back as
folders and ``category`` attributes, and the two round-trip.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import load_config
from bot.configfile import ConfigFile, literal_pattern
from bot.loopback import Server
from bot.opml import export, plan_import, read_opml
from tests.conftest import run_cli
from tests.test_manage import Site, _opml_dir, _sources

CONFIG = """# feeds and digests
timezone = "Asia/Tokyo"

[poll]
allow_private_addresses = true   # the test site is on 127.0.0.1

[[webhooks]]
name = "desk"
kind = "slack"
url = "https://hooks.example/desk"

[[feeds]]
name = "NHK国際"
url = "https://nhk.example/world.xml"
tags = ["ukraine"]

# -- digests ----
[[digests]]   # by name
name = "named"
feeds = ["NHK*"]      # NHK's feeds
webhooks = ["desk"]
# digest_at = ["08:00"]

[[digests]]
name = "tagged"
tags = ["ukraine"]
# feeds = []

[[digests]]
name = "all"

# the end
"""


@pytest.fixture
def site() -> Iterator[Site]:
    handler = Site()
    with Server(handler) as server:
        handler.base = server.base
        yield handler


def config_file(folder: Path, text: str = CONFIG) -> Path:
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    assert load_config(path, {}, need_secrets=False)
    return path


def add(path: Path, *args: str) -> tuple[int, str, str]:
    r = run_cli("--config", str(path), "add", *args)
    return r.returncode, r.stdout, r.stderr


def test_add_tag_writes_the_feeds_tags_and_a_tagged_digest_takes_it(site: Site, tmp_path: Path) -> None:
    path = config_file(tmp_path)
    code, out, err = add(path, site.base + "/other.xml", "--tag", "ukraine", "--tag", "mideast")
    assert code == 0, err
    text = path.read_text(encoding="utf-8")
    table = f'name = "別の新聞"\nurl = "{site.base}/other.xml"\ntags = ["ukraine", "mideast"]\n'
    assert table in text
    start = text.index("\n[[feeds]]\n# added by feedbot add")
    end = text.index(table) + len(table)
    assert text[:start] + text[end:] == CONFIG  # the rest byte for byte
    config = load_config(path, {}, need_secrets=False)
    assert config.feeds[-1].tags == ("ukraine", "mideast")
    assert config.streams_of("別の新聞") == ("tagged", "all")
    assert "digests that will take it: 'tagged', 'all'" in out


def test_add_digest_appends_to_a_digests_feeds(site: Site, tmp_path: Path) -> None:
    path = config_file(tmp_path)
    code, out, err = add(path, site.base + "/other.xml", "--digest", "named")
    assert code == 0, err
    text = path.read_text(encoding="utf-8")
    assert 'feeds = ["NHK*", "別の新聞"]      # NHK\'s feeds\n' in text  # its layout and comment kept
    original = CONFIG.replace('feeds = ["NHK*"]', 'feeds = ["NHK*", "別の新聞"]')
    start = text.index("\n[[feeds]]\n# added by feedbot add")
    end = text.index(f'url = "{site.base}/other.xml"\n') + len(f'url = "{site.base}/other.xml"\n')
    assert text[:start] + text[end:] == original
    assert load_config(path, {}, need_secrets=False).streams_of("別の新聞") == ("named", "all")
    assert '[[digests]] \'named\': feeds = ["NHK*", "別の新聞"]' in out
    assert "digests that will take it: 'named', 'all'" in out


def test_add_digest_to_a_table_of_tags_only_adds_a_feeds_key(site: Site, tmp_path: Path) -> None:
    path = config_file(tmp_path)
    code, _out, err = add(path, site.base + "/other.xml", "--name", "a*b", "--digest", "tagged")
    assert code == 0, err
    text = path.read_text(encoding="utf-8")
    # After its last key line (not after its commented-out options); the
    # name's glob character written as a class, so that it matches it alone.
    assert '[[digests]]\nname = "tagged"\ntags = ["ukraine"]\nfeeds = ["a[*]b"]\n# feeds = []\n' in text
    config = load_config(path, {}, need_secrets=False)
    assert config.streams_of("a*b") == ("tagged", "all") and config.streams_of("NHK国際") == ("named", "tagged", "all")
    assert literal_pattern("a*b?[x]") == "a[*]b[?][[]x]"


def test_add_digest_to_a_table_that_takes_every_feed_changes_nothing_there(site: Site, tmp_path: Path) -> None:
    path = config_file(tmp_path)
    code, out, err = add(path, site.base + "/other.xml", "--digest", "all", "--tag", "ukraine", "--digest", "tagged")
    assert code == 0, err
    assert "[[digests]] 'all' takes every feed already (no feeds or tags key): not changed" in out
    assert "[[digests]] 'tagged' takes it already (by its feeds or tags): not changed" in out
    text = path.read_text(encoding="utf-8")
    start = text.index("\n[[feeds]]\n# added by feedbot add")
    table_end = text.index('tags = ["ukraine"]\n', start) + len('tags = ["ukraine"]\n')
    assert text[:start] + text[table_end:] == CONFIG  # only the feed's table added


def test_add_to_an_unknown_digest_is_a_usage_error_and_writes_nothing(site: Site, tmp_path: Path) -> None:
    path = config_file(tmp_path)
    before = path.read_bytes()
    code, _out, err = add(path, site.base + "/other.xml", "--digest", "taged")
    assert code == 2
    assert err.strip() == (
        "feedbot add: --digest 'taged': no such digest (did you mean \"tagged\"?); the digests: named, tagged, all"
    )
    assert path.read_bytes() == before and not (tmp_path / "config.toml.bak").exists()
    assert site.hits == []  # refused before anything is fetched
    (tmp_path / "plain").mkdir()
    plain = config_file(tmp_path / "plain", CONFIG.split("# --")[0])
    code, _, err = add(plain, site.base + "/other.xml", "--digest", "named")
    assert code == 2 and "the config has no [[digests]] tables" in err
    code, _, err = add(path, site.base + "/other.xml", "--tag", " ")
    assert code == 2 and err.startswith("feedbot add: --tag")
    assert path.read_bytes() == before


def test_add_dry_run_shows_the_edits_and_writes_nothing(site: Site, tmp_path: Path) -> None:
    path = config_file(tmp_path)
    before = path.read_bytes()
    code, out, err = add(path, site.base + "/other.xml", "--tag", "mideast", "--digest", "named", "--dry-run")
    assert code == 0, err
    assert f"dry run: {path} not changed" in out
    assert 'tags = ["mideast"]' in out
    assert '[[digests]] \'named\': feeds = ["NHK*", "別の新聞"]' in out
    assert "digests that will take it: 'named', 'all'" in out
    assert path.read_bytes() == before and not (tmp_path / "config.toml.bak").exists()


# -- OPML folders as tags ------------------------------------------------------------


OPML = (
    '<?xml version="1.0" encoding="utf-8"?><opml version="2.0"><head><title>subs</title></head><body>'
    '<outline text="News"><outline text="Tech" title="Tech">'
    '<outline text="A" type="rss" xmlUrl="https://a.example/feed"/></outline>'
    '<outline text="B" type="rss" xmlUrl="https://b.example/feed"/></outline>'
    '<outline text="Blogs"><outline text="Tech"><outline text="A" xmlUrl="https://a.example/feed"/>'
    "</outline></outline>"
    '<outline text="AC/DC"><outline text="C" xmlUrl="https://c.example/feed"/></outline>'
    '<outline text="D" xmlUrl="https://d.example/feed"/></body></opml>'
)
EMPTY = "# nothing yet\n[poll]\nallow_private_addresses = true\n"


def _tags(path: Path) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(f.name, f.url, f.tags) for f in load_config(path, {}, need_secrets=False).feeds]


def test_opml_import_writes_folders_as_tags_and_export_writes_them_back(tmp_path: Path) -> None:
    source = tmp_path / "subs.opml"
    source.write_text(OPML, encoding="utf-8")
    first = config_file(tmp_path, EMPTY)
    r = run_cli("--config", str(first), "opml", "import", str(source))
    assert r.returncode == 0, r.stderr
    assert "each written as a tag of its feeds" in r.stdout
    assert _tags(first) == [
        ("A", "https://a.example/feed", ("News / Tech", "Blogs / Tech")),  # the whole path: the two Techs apart
        ("B", "https://b.example/feed", ("News",)),
        ("C", "https://c.example/feed", ("AC/DC",)),
        ("D", "https://d.example/feed", ()),
    ]
    text = first.read_text(encoding="utf-8")
    assert '[[feeds]]\n# from subs.opml\nname = "A"\nurl = "https://a.example/feed"\n' in text
    assert 'tags = ["News / Tech", "Blogs / Tech"]\n' in text

    exported = tmp_path / "out.opml"
    assert run_cli("--config", str(first), "opml", "export", str(exported)).returncode == 0
    root = ET.fromstring(exported.read_bytes())
    a = root.find("body/outline[@text='News']/outline[@text='Tech']/outline[@text='A']")
    assert a is not None and a.get("category") == "/News/Tech,/Blogs/Tech"  # in its first tag's folder
    assert root.find("body/outline[@text='Blogs']") is None  # its other tag: a category only
    b = root.find("body/outline[@text='News']/outline[@text='B']")
    assert b is not None and b.get("category") is None  # one tag: its folder says it
    assert root.find("body/outline[@text='AC/DC']/outline[@text='C']") is not None
    assert root.find("body/outline[@text='D']") is not None

    (tmp_path / "second").mkdir()
    second = config_file(tmp_path / "second", EMPTY)
    assert run_cli("--config", str(second), "opml", "import", str(exported)).returncode == 0
    assert _tags(second) == _tags(first)
    again = tmp_path / "again.opml"
    assert run_cli("--config", str(second), "opml", "export", str(again)).returncode == 0
    twice, once = again.read_bytes(), exported.read_bytes()
    assert twice[twice.index(b"<body>") :] == once[once.index(b"<body>") :]


def test_opml_import_dry_run_shows_the_folders_it_would_tag(tmp_path: Path) -> None:
    source = tmp_path / "subs.opml"
    source.write_text(OPML, encoding="utf-8")
    path = config_file(tmp_path, EMPTY)
    r = run_cli("--config", str(path), "opml", "import", str(source), "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "A https://a.example/feed (folder News / Tech ; Blogs / Tech)" in r.stdout
    assert path.read_text(encoding="utf-8") == EMPTY


@pytest.mark.parametrize("name", [str(s["file"]) for s in _sources()] or ["(no corpus)"])
def test_every_real_opml_file_round_trips_its_folders_as_tags(name: str) -> None:
    """Import → export → import of the real exports: the same feeds, with the same tags in the same order
    (the feeds themselves may come back in another order: an export groups them by folder)."""
    data = (_opml_dir() / name).read_bytes()
    first = ConfigFile(Path("/nonexistent/config.toml"), 'timezone = "UTC"\n')
    first.add_feeds(plan_import(read_opml(data), [], name).add)
    feeds = first.validate({}).feeds
    second = ConfigFile(Path("/nonexistent/config.toml"), 'timezone = "UTC"\n')
    second.add_feeds(plan_import(read_opml(export(feeds)), [], "export.opml").add)
    again = second.validate({}).feeds
    assert sorted((f.url, f.name, f.tags, f.enabled) for f in again) == sorted(
        (f.url, f.name, f.tags, f.enabled) for f in feeds
    )


def test_a_real_export_with_folders_through_the_cli(tmp_path: Path) -> None:
    source = _opml_dir() / "jackevansevo_django-feedreader_inoreader.xml"
    first = config_file(tmp_path, EMPTY)
    r = run_cli("--config", str(first), "opml", "import", str(source))
    assert r.returncode == 0, r.stderr
    tagged = [t for t in _tags(first) if t[2]]
    assert tagged, "the file has folders"
    exported = tmp_path / "out.opml"
    assert run_cli("--config", str(first), "opml", "export", str(exported)).returncode == 0
    (tmp_path / "second").mkdir()
    second = config_file(tmp_path / "second", EMPTY)
    assert run_cli("--config", str(second), "opml", "import", str(exported)).returncode == 0
    assert sorted(_tags(second)) == sorted(_tags(first))
