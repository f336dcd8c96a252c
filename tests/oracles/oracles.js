// The platforms' own parsers, asked what they make of a message feedbot
// wrote: a JSON line in ({"platform": …, "text": …}), a JSON line out
// ({"links": [...], "marks": [...], "visible": "…"}, and "length" for
// Mastodon).  tests/test_render_oracles.py keeps one process and asks it
// about every generated line.
//
//   misskey    mfm-js, Misskey's own MFM parser
//   discord    discord-markdown-parser (simple-markdown with Discord's rules)
//   commonmark markdown-it with linkify (Teams' TextBlocks; one block per line)
//   slack      slack-markdown (Slack's mrkdwn to HTML)
//   mastodon   twitter-text with the URL rule Mastodon configures
//              (config/initializers/twitter_regex.rb), Mastodon's length rule
//              (StatusLengthValidator: a link 23, graphemes otherwise)
//
// "marks": every node that is not plain text or a link (emphasis, code,
// spoilers, mentions, emoji, headings, quotes, lists…): feed text must make
// none.  "visible": the text a reader sees.
"use strict";

const readline = require("readline");
const mfm = require("mfm-js");
const discord = require("discord-markdown-parser");
const markdownIt = require("markdown-it");
const slack = require("slack-markdown");
const twitter = require("twitter-text");
const extractUrl = require("twitter-text/dist/regexp/extractUrl"); // the very RegExp extractUrlsWithIndices uses

function misskey(text) {
  const out = { links: [], marks: [], visible: "" };
  const walk = (nodes) => {
    for (const node of nodes) {
      if (node.type === "text") out.visible += node.props.text;
      else if (node.type === "url") {
        out.links.push(node.props.url);
        out.visible += node.props.url;
      } else if (node.type === "plain") walk(node.children);
      else {
        out.marks.push(node.type);
        if (node.children) walk(node.children);
      }
    }
  };
  walk(mfm.parse(text));
  return out;
}

function discordParse(text) {
  const out = { links: [], marks: [], visible: "" };
  const walk = (nodes) => {
    for (const node of nodes) {
      if (node.type === "text") out.visible += node.content;
      else if (node.type === "br") out.visible += "\n";
      else if (node.type === "url" || node.type === "autolink") {
        out.links.push(node.target);
        walk(node.content);
      } else {
        out.marks.push(node.type);
        if (Array.isArray(node.content)) walk(node.content);
      }
    }
  };
  walk(discord.parse(text, "normal"));
  return out;
}

const md = markdownIt({ linkify: true });

function commonmark(text) {
  const out = { links: [], marks: [], visible: "" };
  text.split("\n").forEach((line, n) => {
    if (n) out.visible += "\n";
    for (const token of md.parse(line, {})) {
      if (token.type === "inline") {
        let inLink = false;
        for (const t of token.children) {
          if (t.type === "text") {
            out.visible += t.content;
            if (inLink) out.links[out.links.length - 1] += t.content;
          } else if (t.type === "link_open" && (t.markup === "autolink" || t.markup === "linkify")) {
            inLink = true;
            out.links.push("");
          } else if (t.type === "link_close" && inLink) inLink = false;
          else out.marks.push(t.type);
        }
      } else if (token.type !== "paragraph_open" && token.type !== "paragraph_close") {
        out.marks.push(token.type);
      }
    }
  });
  return out;
}

const ENTITIES = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#39;": "'", "&#x27;": "'" };
const unescapeHtml = (s) => s.replace(/&(?:amp|lt|gt|quot|#39|#x27);/g, (e) => ENTITIES[e]);

function slackParse(text) {
  const out = { links: [], marks: [], visible: "" };
  const html = slack.toHTML(text, { slackOnly: true }); // Slack's own sequences; markup is off (mrkdwn: false)
  for (const m of html.matchAll(/<(\/?)([a-z]+)([^>]*)>/g)) {
    if (m[1]) continue;
    const tag = m[2];
    const cls = /class="([^"]*)"/.exec(m[3]);
    if (tag === "a") out.links.push(unescapeHtml(/href="([^"]*)"/.exec(m[3])[1]));
    else if (tag !== "br") out.marks.push(cls ? `${tag}.${cls[1]}` : tag);
  }
  // slack-markdown escapes the text it is given as HTML, entities included;
  // Slack itself shows its &amp; &lt; &gt; as & < >.
  out.visible = unescapeHtml(unescapeHtml(html.replace(/<br\s*\/?>/g, "\n").replace(/<[^>]*>/g, "")));
  return out;
}

// Mastodon's URL rule: twitter-text's, with the path, query and ending
// characters its initializer sets.
const R = twitter.regexen;
// (Built without the "u" flag, as twitter-text builds its own: its pieces
// hold escapes "u" refuses.  Characters past the BMP enter as surrogates.)
const WHITE = "\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const UCHARS = "\\u00A0-\\uD7FF\\uF900-\\uFDCF\\uFDF0-\\uFFEF\\uD800-\\uDFFF\\uE000-\\uF8FF";
const pathChars = `[^${WHITE}<>()?]`;
const balanced = `\\((?:${pathChars}+|(?:${pathChars}*\\(${pathChars}+\\)${pathChars}*))\\)`;
const pathEnding = `(?:[^${WHITE}()?!*"'「」<>;:=,.$%\\[\\]~&|@]|${balanced})`;
const path = `(?:(?:${pathChars}*(?:${balanced}${pathChars}*)*${pathEnding})|(?:${pathChars}+\\/))`;
const queryChars = `[a-z0-9!?*'();:&=+$/%#\\[\\]\\-_.,~|@\\^${UCHARS}]`;
const queryEnding = `[a-z0-9_&=#/\\-${UCHARS}]`;
// twitter-text's own start: "(" (the whole match) "(preceding)"; Mastodon's URL after it
const precedingAndDomain = R.extractUrl.source.split("((https?:\\/\\/)?")[0];
const domain = R.validDomain.source;
const mastodonUrl = new RegExp(
  `${precedingAndDomain}((https?:\\/\\/)?(${domain})(?::(${R.validPortNumber.source}))?(\\/${path}*)?(\\?${queryChars}*${queryEnding})?))`,
  "gi",
);
extractUrl.compile(mastodonUrl.source, "gi"); // recompiled in place: twitter-text holds this object

function mastodon(text) {
  const urls = twitter.extractUrlsWithIndices(text, { extractUrlsWithoutProtocol: false });
  let countable = "";
  let at = 0;
  for (const u of urls) {
    countable += text.slice(at, u.indices[0]) + "x".repeat(23);
    at = u.indices[1];
  }
  countable += text.slice(at);
  const graphemes = [...new Intl.Segmenter("en", { granularity: "grapheme" }).segment(countable)].length;
  return { links: urls.map((u) => u.url), marks: [], visible: text, length: graphemes };
}

const PLATFORMS = { misskey, discord: discordParse, commonmark, slack: slackParse, mastodon };

const rl = readline.createInterface({ input: process.stdin, terminal: false });
rl.on("line", (line) => {
  let result;
  try {
    const { platform, text } = JSON.parse(line);
    result = PLATFORMS[platform](text);
  } catch (err) {
    result = { error: String(err && err.stack ? err.stack : err) };
  }
  process.stdout.write(JSON.stringify(result) + "\n");
});
