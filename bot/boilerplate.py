"""Lines of an extracted body that are not body (pure).

The extraction engine (``bot.extract``) finds the article's block of text;
what it leaves in is the small print that news pages put around their
paragraphs.  The digest format says none of it is body: datelines
(``2025年1月21日午前 8:10 GMT+9``), bylines, photo captions and credits,
"related articles" blocks, trust badges, copyright lines, share prompts,
login, subscription and newsletter prompts, advertisement labels, and a
line repeated.

Each rule looks at one line (and, for "related" blocks, at the lines after
a "related" heading: rankings, photo galleries, comment prompts and NHK's
teaser blocks are such blocks too); ``drop_reason`` names the rule that
drops a line, for tests and for the evaluation's explanations.  A few look
at the lines around one: an author's box (name, position, ``専門・関心分野``
and the fields; a columnist's ``1969年生まれ。`` profile) goes whole, and a
provider's name alone on the first or last line (``テレビ朝日``) goes.
Bylines that share a line with the text (``【ワシントン＝山田太郎】`` before
it, ``（共同）``, ``（米田優人）``, ``＝敬称略`` after its last sentence) are cut
off the line, which stays (``trimmed``).

The rules are written for Japanese and English news first, with the
commonest words of other languages where they cost nothing.  A line that
ends like a sentence is never taken for a dateline or a byline: body text
is kept when in doubt.

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
    r"|月額[\d,，]+円|今なら[^。]{0,12}無料|無料体験|無料期間|詳しくはこちら$|Googleで優先的に表示|優先ソースに追加"
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
    保存 保存する 記事を保存 保存しました 完了しました 完了 キャンセル スクラップ
    この記事をシェア この記事をシェアする メール リンク リンクをコピー コピー 共有 共有する フォロー フォローする
    teilen drucken partager imprimer compartir imprimir condividi""".split()
)
_WORD_SEP = re.compile(r"[\s|·•・/,、]+")
_ADVERT = frozenset(
    "広告 pr スポンサーリンク advertisement advertisements sponsored ad anzeige werbung publicité publicidad".split()
)
_RELATED_HEADING = re.compile(
    r"^[\s■□▼▽▶►◆◇●○【＜<\[]*(?:関連記事|関連ニュース|関連リンク|あわせて読みたい|合わせて読みたい|こちらもおすすめ|おすすめ記事"
    r"|(?:アクセス|総合|記事)?ランキング(?:（[^）]{0,8}）)?|人気記事|よく読まれている記事|この記事の写真|写真一覧|写真特集"
    r"|コメント(?:一覧|を書く|する|を見る)?|みんなの(?:意見|コメント)|Yahoo!ニュース\s?オリジナル|注目ワード|深掘りコンテンツ"
    r"|最新・注目の動画|天気予報・防災情報|新着ニュース|各地のニュース"
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


# A line that is only a bracketed label: ＜sui－setsu＞ (a column's name), 【速報】.
_LABEL = re.compile(r"^(?:＜[^＜＞]{1,22}＞|〈[^〈〉]{1,22}〉|《[^《》]{1,22}》|【[^【】]{1,22}】)$")
_WORDLESS = re.compile(r"^[\s…‥・･.。,、*＊※■□◆◇●○▲△▼▽☆★─━\-—―~〜]+$")  # "…", "＊ ＊ ＊": a mark, not text
# Bylines and credits at the ends of a paragraph, cut off the line (the
# paragraph stays): 【ワシントン＝山田太郎】 and 【ニューヨーク共同】 before the
# text; （共同）, （米田優人）, （共同通信＝助川尭史）, ＝敬称略 after its last
# sentence.  (Reuters' ［東京 ２４日 ロイター］ stays: the house keeps it.)
_LEADING_BYLINE = re.compile(r"^\s*【(?:[^【】＝\s]{1,16}＝[^【】]{1,16}|[^【】\s]{1,12}(?:共同|時事))】\s*")
_TRAILING_BYLINE = re.compile(
    r"(?<=[。．！？!?」』])\s*(?:"
    r"[（(](?:[^（）()。、\d]{1,16}＝[^（）()。、\d]{1,12}|共同|時事|共同通信|時事通信|ロイター|AFP|AP"
    r"|[\u3040-\u30ff\u3400-\u9fff]{2,8}(?:記者)?)[）)]"
    r"|[=＝]敬称略|[（(]敬称略[）)])\s*$"
)
_AUTHOR_CARD = re.compile(r"^専門・関心分野$")  # Asahi's author box: name, position, this, the fields
_POSITION = re.compile(
    r"^[^\s。、]{0,12}(?:総局|支局|支社|総局長|支局長|論説委員|編集委員|解説委員|特派員|記者|報道部|取材班|通信部|デスク)$"
)
_NAME = re.compile(r"^[\u3040-\u30ff\u3400-\u9fff]{2,6}$")  # 中嶋周平
_PROFILE = re.compile(r"^(?:\d{4}|[一二三四五六七八九〇]{4})年(?:[^。]{0,12})?生まれ[。、]")  # 1969年生まれ。
PROFILE_HEAD = 2  # lines above a profile that belong to it (name, affiliation)
# A provider's name alone on the first or last line: "テレビ朝日", "All Nippon NewsNetwork(ANN)".
_OUTLET = re.compile(
    r"(?:新聞|通信|テレビ|放送|日報|新報|タイムス|ニュース|NEWS|News|NewsNetwork|ネットワーク|[（(][A-Z]{2,5}[)）])",
)
OUTLET_MAX = 30


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
    if _LABEL.match(stripped):
        return "label"
    if _WORDLESS.match(stripped):
        return "mark"
    if short and _POSITION.match(stripped):
        return "byline"
    return None


def trimmed(text: str) -> str:
    """A body line without the byline or credit at its ends."""
    return _TRAILING_BYLINE.sub("", _LEADING_BYLINE.sub("", text, count=1), count=1)


def _is_outlet(line: Line) -> bool:
    text = line.text.strip()
    return len(text) <= OUTLET_MAX and not _SENTENCE_END.search(text) and bool(_OUTLET.search(text))


def ends_sentence(text: str) -> bool:
    return bool(_SENTENCE_END.search(text))


def _is_small(text: str, limit: int) -> bool:
    text = trimmed(text)
    return len(text) <= limit and not _SENTENCE_END.search(text)


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
    in_related = skip_next = False
    for line in lines:
        text = line.text.strip()
        if skip_next:  # an author box's fields
            skip_next = False
            continue
        if len(text) <= SHORT and _RELATED_HEADING.search(text):
            in_related = True  # the heading and the headlines under it
            continue
        if in_related:
            if line.linky or _is_small(text, SHORT):
                continue
            in_related = False
        if _AUTHOR_CARD.match(text) or _PROFILE.match(text):
            # The name and position above it are the author's too.
            for _ in range(PROFILE_HEAD):
                if kept and not kept[-1].heading and _is_small(kept[-1].text, 40):
                    kept.pop()
            skip_next = bool(_AUTHOR_CARD.match(text))
            continue
        reason = drop_reason(text)
        if reason == "byline" and kept and _NAME.match(kept[-1].text.strip()):
            kept.pop()  # 中嶋周平 above 神戸総局
        key = _key(line.text)
        if not key or reason or _is_title(key, title_keys, leading=not kept):
            continue
        if any(_key(k.text) == key for k in kept[-REPEAT_WINDOW:]):
            continue
        kept.append(line)
    while kept and _is_outlet(kept[-1]):
        kept.pop()  # the provider's name under the story
    if len(kept) > 1 and _is_outlet(kept[0]) and not kept[0].heading:
        kept.pop(0)
    return [_trim(line) for line in kept if trimmed(line.text).strip()]


def _trim(line: Line) -> Line:
    text = trimmed(line.text)
    return line if text == line.text else Line(text, line.heading, min(line.link_chars, len(text)))


def prose_chars(lines: Sequence[Line]) -> int:
    """Characters of running text: not headings, not link lines."""
    return sum(_visible_len(line.text) for line in lines if not line.heading and not line.linky)
