"""Lines of an extracted body that are not body (pure).

The extraction engine (``bot.extract``) finds the article's block of text;
what it leaves in is the small print that news pages put around their
paragraphs.  The digest format says none of it is body: datelines
(``2025年1月21日午前 8:10 GMT+9``), bylines, photo captions and credits,
"related articles" blocks, trust badges, copyright lines, share prompts,
login and newsletter prompts, advertisement labels, and a line repeated.

Each rule looks at one line (and, for "related" blocks, at the lines after
a "related" heading); ``drop_reason`` names the rule that drops a line, for
tests and for the evaluation's explanations.  The rules are written for
Japanese and English news first, with the commonest words of other
languages where they cost nothing.  A line that ends like a sentence is
never taken for a dateline or a byline: body text is kept when in doubt.

Every pattern here is linear in the length of the line (no nested
repetition), and lines longer than ``SHORT`` are only checked for what a
long line can be (a caption ending in a credit).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

SHORT = 80  # small print is short: longer lines are body unless a credit ends them
LINK_LINE_MAX = 150  # a line mostly in a link and at most this long is a link, not prose
CAPTION_MAX = 200  # a caption with its credit is at most this long

# -- datelines ----------------------------------------------------------------

_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_WEEKDAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun"
_DATE = re.compile(
    r"(?<!\d)\d{4}\s?[年/.\-]\s?\d{1,2}\s?[月/.\-]\s?\d{1,2}(?!\d)\s?日?"  # 2025年1月21日, 2019/04/11, 2025-01-21
    r"|(?<!\d)\d{1,2}\s?月\s?\d{1,2}\s?日"  # 1月21日
    rf"|\b(?:{_MONTHS})\.?\s\d{{1,2}}(?:st|nd|rd|th)?,?(?:\s\d{{4}})?\b"  # January 21, 2025
    rf"|\b\d{{1,2}}\.?\s(?:{_MONTHS})\.?,?(?:\s\d{{4}})?\b",  # 21 January 2025
    re.IGNORECASE,
)
_TIME = re.compile(r"(?<!\d)\d{1,2}:\d{2}(?::\d{2})?(?!\d)|(?<!\d)\d{1,2}\s?時\s?\d{1,2}\s?分")  # 8:10, 18時34分
# What may stand beside a date in a dateline: times of day, zones, weekdays,
# the words for published/updated, and a category or counter left over.
_DATE_FILLER = re.compile(
    rf"\b(?:{_WEEKDAYS}|{_MONTHS})\b\.?"
    r"|\b(?:am|pm|a\.m\.|p\.m\.|gmt|utc|jst|est|edt|cst|cdt|pst|pdt|cet|cest|bst|ist|kst)\b"
    r"|\b(?:updated?|published|posted|modified|last|on|at|and|first|date|time|new)\b"
    r"|午前|午後|更新|公開|配信|掲載|最終|日時|投稿|発表|現在|曜日?|[月火水木金土日](?=[)）])"
    r"|[\d\s\W_]",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[。．！？!?」』”\"]\s*$|[^.\s]\.\s*$")
DATELINE_LEFTOVER = 6  # characters a dateline may hold besides its date: "サッカー" in a metadata line

# -- other small print --------------------------------------------------------

# "By Jane Doe and John Roe", "Von Hans Muster", "文・山田太郎": a name after
# the word, capitalised where the script has capitals ("By default, …" is text).
_BYLINE = re.compile(
    r"^(?:By|BY|Von|VON|Par|PAR|Por|POR|Di|Door|Av|Af)\s+\S"
    r"|^(?:Written|Reported|Text|Words|Photos?)\s+by\s"
    r"|^(?:文|写真|取材|記者|執筆|構成|撮影|編集|聞き手|筆者)\s*[・：:＝=/／]"
)
_NAME_WORD = re.compile(r"[A-ZÀ-ÖØ-Þ][\w'’.\-]*|and|und|et|y|e|&|de|van|von|der|la|le|del|da|di", re.UNICODE)
_COPYRIGHT = re.compile(
    r"^\s*(?:©|\(c\)|（c）|copyright\b|著作権)"
    r"|all rights reserved|無断で?(?:転載|複製|使用)|転載(?:すること)?を禁|(?:許諾|許可)なく転載"
    r"|alle rechte vorbehalten|tous droits réservés"
    r"|todos los derechos reservados|tutti i diritti riservati",
    re.IGNORECASE,
)
_BADGE = re.compile(r"trust principles|信頼の原則|行動規範", re.IGNORECASE)
_PROMPT = re.compile(
    r"有料会員|会員登録|会員限定|会員の方|ログインして|ログインすると|ログインが必要|続きを読む|続きをお読み|有料記事|無料登録"
    r"|ニュースレター|メールマガジン|メルマガ|残り[\d,，]+文字|ご登録|定期購読|購読のお申し込み|今すぐ購読"
    r"|\b(?:sign up|sign in to|log in to|subscribe to|subscribers? only|already a subscriber|newsletters?"
    r"|create an account)\b",
    re.IGNORECASE,
)
_CREDIT_START = re.compile(
    r"^(?:写真|画像|図|出典|提供|資料|photo(?:graph)?s?|images?|pictures?|foto|bild|credits?|quelle)\s*[:：＝=]",
    re.IGNORECASE,
)
_CREDIT_WORDS = "|".join(
    "提供 撮影 写真 ロイター 共同 時事 新華社 朝日新聞社 毎日新聞社".split()
    + "AFP AP EPA Getty Reuters Bloomberg Photo Foto dpa Xinhua".split()
)
# A caption ends with a parenthesised credit: （ロシア大統領府提供）, (AP Photo/Name),
# （2025年　ロイター）.  Body text that quotes an agency ends "…と述べた。（共同）":
# a credit after a full stop counts only with a photo word or a year in it.
_CREDIT_END = re.compile(rf"[（(][^（）()]{{0,40}}(?:{_CREDIT_WORDS})[^（）()]{{0,20}}[）)]\s*$", re.IGNORECASE)
_PHOTO_CREDIT_END = re.compile(
    r"[（(][^（）()]{0,40}(?:提供|撮影|写真|photo|foto|getty|\d{4})[^（）()]{0,20}[）)]\s*$", re.IGNORECASE
)
_SHARE_WORDS = frozenset(
    """share shares sharing tweet tweets email e-mail mail print copy link links facebook twitter x line linkedin
    whatsapp pinterest reddit telegram threads bluesky mastodon pocket hatena flipboard messenger weibo wechat
    this article story post on via comments comment save bookmark
    シェア シェアする ツイート ポスト いいね ブックマーク はてなブックマーク はてブ 印刷 印刷する
    保存 保存する 記事を保存
    この記事をシェア この記事をシェアする メール リンク リンクをコピー コピー 共有 共有する フォロー フォローする
    teilen drucken partager imprimer compartir imprimir condividi""".split()
)
_WORD_SEP = re.compile(r"[\s|·•・/,、]+")
_ADVERT = frozenset(
    "広告 pr スポンサーリンク advertisement advertisements sponsored ad anzeige werbung publicité publicidad".split()
)
_RELATED_HEADING = re.compile(
    r"^[\s■□▼▽▶►◆◇●○【＜<\[]*(?:関連記事|関連ニュース|関連リンク|あわせて読みたい|合わせて読みたい|こちらもおすすめ|おすすめ記事"
    r"|この記事を読んだ人におすすめ|related(?: articles?| stories| coverage| content| news| posts?| reading)?"
    r"|read more|read next|more from\b.*|recommended(?: for you| stories| articles)?|you may also like|see also"
    r"|weitere artikel|mehr zum thema|à lire aussi|lire aussi|te puede interesar)"
    r"[\s】＞>\]:：]*$",
    re.IGNORECASE,
)
_RELATED_PREFIX = re.compile(
    r"^[\s■□▼▽▶►◆◇●○]*(?:【関連(?:記事|ニュース)?】|＜関連(?:記事)?＞|関連記事[:：]|関連[:：]"
    r"|(?:related|read more|read also|see also|also read|more)\s*:)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Line:
    """One line of an extracted body, with what the engine knew of it."""

    text: str
    heading: bool = False  # a title or subheading (<h2>…, trafilatura's <head>)
    link_chars: int = 0  # characters of it inside links

    @property
    def linky(self) -> bool:
        """Mostly a link and short: a headline in a list, a "read more".
        (A long paragraph that is one link is still prose: a teaser.)"""
        size = _visible_len(self.text)
        return size <= LINK_LINE_MAX and self.link_chars * 2 > size


def _visible_len(text: str) -> int:
    return len(text) - text.count(" ")


def _is_dateline(text: str) -> bool:
    """A date (and time), with at most a word or two beside it."""
    if len(text) > SHORT or not _DATE.search(text) or _SENTENCE_END.search(text):
        return False
    rest = _DATE_FILLER.sub("", _TIME.sub("", _DATE.sub("", text)))
    return len(rest) <= DATELINE_LEFTOVER


def _is_byline(text: str) -> bool:
    if not _BYLINE.search(text) or _SENTENCE_END.search(text):
        return False
    words = text.replace(",", " ").split()[1:]
    if words and words[0] == "by":  # "Written by …"
        words = words[1:]
    if not words or not words[0][:1].isalpha():
        return not words
    if not words[0][:1].isupper() and words[0][:1].lower() != words[0][:1].upper():
        return False  # "By default": a lower-case word after "By"
    return all(_NAME_WORD.fullmatch(w) for w in words[:6]) or not words[0].isascii()


def _is_share(text: str) -> bool:
    words = [w for w in _WORD_SEP.split(text.lower()) if w]
    return bool(words) and all(w in _SHARE_WORDS for w in words)


def _is_caption(text: str) -> bool:
    if len(text) > CAPTION_MAX:
        return False
    if _CREDIT_START.search(text) and len(text) <= SHORT:
        return True
    m = _CREDIT_END.search(text)
    if not m:
        return False
    before = text[: m.start()].rstrip()
    # "…と述べた。（共同）" is body with its agency's name; "…撮影。提供写真（2025年　ロイター）" is a caption.
    return not before.endswith(("。", ".", "．")) or bool(_PHOTO_CREDIT_END.search(text))


def drop_reason(text: str) -> str | None:
    """The rule that makes one line small print, or ``None`` for body."""
    stripped = text.strip()
    if not stripped:
        return "empty"
    short = len(stripped) <= SHORT
    if stripped.lower().strip(" -–—:：[]【】()（）") in _ADVERT:
        return "advert"
    if _is_dateline(stripped):
        return "dateline"
    if short and _is_share(stripped):
        return "share"
    if short and _BADGE.search(stripped):
        return "badge"
    if len(stripped) <= CAPTION_MAX and _COPYRIGHT.search(stripped):
        return "copyright"
    if short and _PROMPT.search(stripped):
        return "prompt"
    if short and _is_byline(stripped):
        return "byline"
    if _is_caption(stripped):
        return "caption"
    if short and _RELATED_PREFIX.search(stripped):
        return "related"
    return None


def _key(text: str) -> str:
    return "".join(text.split()).casefold()


def _is_title(key: str, title_keys: set[str], leading: bool) -> bool:
    """The page's headline again: equal to a title, or, before the body
    starts, most of a ``<title>`` that adds the site's name to it."""
    if key in title_keys:
        return True
    return leading and len(key) >= 8 and any(key in t and 2 * len(key) >= len(t) for t in title_keys)


REPEAT_WINDOW = 3  # a line equal to one of the last few kept is a repeat (a caption given twice)


def clean_lines(lines: Sequence[Line], titles: Sequence[str] = ()) -> list[Line]:
    """The body lines of ``lines``: small print, the page's own title, a
    line repeated right after itself and "related" blocks left out; order
    kept.  (Lines repeated far apart are kept: recipes and tables repeat
    "1 tsp." on purpose.)"""
    title_keys = {_key(t) for t in titles if t.strip()}
    kept: list[Line] = []
    in_related = False
    for line in lines:
        key = _key(line.text)
        if len(line.text) <= SHORT and _RELATED_HEADING.search(line.text.strip()):
            in_related = True  # the heading and the headlines under it
            continue
        if in_related:
            if line.linky or (len(line.text) <= SHORT and not _SENTENCE_END.search(line.text)):
                continue
            in_related = False
        if not key or _is_title(key, title_keys, leading=not kept) or drop_reason(line.text):
            continue
        if any(_key(k.text) == key for k in kept[-REPEAT_WINDOW:]):
            continue
        kept.append(line)
    return kept


def prose_chars(lines: Sequence[Line]) -> int:
    """Characters of running text: not headings, not link lines."""
    return sum(_visible_len(line.text) for line in lines if not line.heading and not line.linky)
