// Markdown from model output → a safe DocumentFragment.
//
// Model output is hostile input: anyone can make a model echo HTML. So the pipeline is
//   marked (GFM, raw HTML escaped) → DOMPurify with an allow-list → our own URL checks →
//   presentation tweaks (highlighting, copy buttons, table wrappers, off-site images as links).
// DOMPurify parses in an inert document, so nothing loads or runs before the checks are done,
// and the checks on URLs go through the URL parser (which is what the browser would use), so
// obfuscations such as "jav&#x09;ascript:" or " JaVaScRiPt:" are judged as the browser sees them.

import { Marked } from "../vendor/marked/marked.esm.js";
import DOMPurify from "../vendor/dompurify/purify.es.mjs";
import hljs from "../vendor/highlight/core.min.js";
import bash from "../vendor/highlight/languages/bash.min.js";
import c from "../vendor/highlight/languages/c.min.js";
import cpp from "../vendor/highlight/languages/cpp.min.js";
import css from "../vendor/highlight/languages/css.min.js";
import diff from "../vendor/highlight/languages/diff.min.js";
import go from "../vendor/highlight/languages/go.min.js";
import java from "../vendor/highlight/languages/java.min.js";
import javascript from "../vendor/highlight/languages/javascript.min.js";
import json from "../vendor/highlight/languages/json.min.js";
import markdown from "../vendor/highlight/languages/markdown.min.js";
import python from "../vendor/highlight/languages/python.min.js";
import rust from "../vendor/highlight/languages/rust.min.js";
import shell from "../vendor/highlight/languages/shell.min.js";
import sql from "../vendor/highlight/languages/sql.min.js";
import typescript from "../vendor/highlight/languages/typescript.min.js";
import xml from "../vendor/highlight/languages/xml.min.js";
import yaml from "../vendor/highlight/languages/yaml.min.js";
import { copyWithFeedback } from "./clipboard.js";
import { t } from "./chat-strings.js";

const LANGUAGES = {
  bash, c, cpp, css, diff, go, java, javascript, json, markdown, python, rust, shell, sql,
  typescript, xml, yaml,
};
for (const [name, grammar] of Object.entries(LANGUAGES)) hljs.registerLanguage(name, grammar);

// Guessing the language of an unlabelled block runs every grammar over it: only for finished
// replies, and only for blocks short enough that it stays quick.
const AUTO_DETECT_MAX = 8000;

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

const LINE_BREAK = /^<br\s*\/?>$/i;
const COMMENT = /^<!--[\s\S]*-->$/;

const marked = new Marked({
  gfm: true,
  breaks: false,
  renderer: {
    // Raw HTML in a reply is shown as text, the way chat apps show it. Letting it through to
    // DOMPurify would be safe too, but parsing hostile attributes makes Chrome report CSP
    // violations (even in DOMPurify's inert document), and a model writing "<div>" in prose
    // almost always means the characters. Two exceptions: <br> (common in table cells) and
    // comments (invisible anyway).
    html({ text, block }) {
      const raw = text.trim();
      if (LINE_BREAK.test(raw)) return "<br>";
      if (COMMENT.test(raw)) return "";
      const escaped = escapeHtml(raw);
      return block ? `<p>${escaped.replace(/\n/g, "<br>")}</p>\n` : escapeHtml(text);
    },
    // GFM task lists would produce <input> elements; plain ballot boxes say the same thing.
    checkbox({ checked }) {
      return checked ? "☑ " : "☐ ";
    },
  },
});

// Everything not listed here is removed (its text kept, except for script/style-like elements
// whose content DOMPurify drops too). No svg, math, iframe, object, embed, form, input, style,
// base, meta, link, button, template.
const ALLOWED_TAGS = [
  "a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "details", "div", "dl",
  "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark",
  "ol", "p", "pre", "q", "s", "samp", "small", "span", "strong", "sub", "summary", "sup",
  "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
];
// No style, id or name (DOM clobbering), no event handlers, no data-*/aria-*.
const ALLOWED_ATTR = ["href", "title", "alt", "src", "class", "align", "colspan", "rowspan", "start"];

const PURIFY_CONFIG = {
  ALLOWED_TAGS,
  ALLOWED_ATTR,
  ALLOW_DATA_ATTR: false,
  ALLOW_ARIA_ATTR: false,
  ALLOW_UNKNOWN_PROTOCOLS: false,
  // A first coarse filter (relative URLs, http, https, mailto); the hook below decides finally.
  ALLOWED_URI_REGEXP: /^(?:(?:https?|mailto):|[^a-z]|[a-z+.-]+(?:[^a-z+.\-:]|$))/i,
  RETURN_DOM_FRAGMENT: true,
};

const LINK_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);
const IMAGE_PROTOCOLS = new Set(["http:", "https:"]);
const EXTERNAL_REL = "noopener noreferrer nofollow";
const CODE_CLASS = /^language-[\w+#.-]{1,32}$/;

/** The URL as the browser would resolve it, or null when its scheme is not in `allowed`. */
function parseUrl(value, allowed) {
  let url;
  try {
    url = new URL(value, document.baseURI);
  } catch {
    return null;
  }
  return allowed.has(url.protocol) ? url : null;
}

export function markExternal(link) {
  link.target = "_blank";
  link.rel = EXTERNAL_REL;
}

// A private DOMPurify instance, so these hooks cannot affect any other user of the library.
const purifier = DOMPurify(window);

purifier.addHook("afterSanitizeAttributes", (node) => {
  if (node.hasAttribute("class")) keepOnlyCodeClass(node);
  if (node.nodeName === "A") checkLink(node);
  else if (node.nodeName === "IMG") checkImage(node);
});

function keepOnlyCodeClass(node) {
  // Classes would let a reply borrow the page's own styles (a fake notice, a hidden overlay);
  // only the fenced-code language marker is useful.
  const wanted = node.nodeName === "CODE" ? [...node.classList].find((name) => CODE_CLASS.test(name)) : null;
  if (wanted) node.className = wanted;
  else node.removeAttribute("class");
}

function checkLink(link) {
  const href = link.getAttribute("href");
  if (href === null) return;
  const url = parseUrl(href, LINK_PROTOCOLS);
  if (!url) {
    link.removeAttribute("href");
    return;
  }
  if (url.protocol !== "mailto:" && url.origin !== window.location.origin) markExternal(link);
  else link.removeAttribute("target");
}

function checkImage(image) {
  // The CSP only lets images load from this origin; anything else is shown as a link, so the
  // reader still gets to it (in a new tab) and no request leaves the page on its own.
  // An empty src (also what DOMPurify leaves of a rejected one) would resolve to this page.
  const src = (image.getAttribute("src") || "").trim();
  const url = src ? parseUrl(src, IMAGE_PROTOCOLS) : null;
  image.removeAttribute("src");
  if (url && url.origin === window.location.origin) {
    image.setAttribute("src", url.href);
    image.setAttribute("loading", "lazy");
  } else if (url) {
    // Set after DOMPurify removed every data-* attribute, so only this hook can put it there.
    image.setAttribute("data-offsite-src", url.href);
  }
}

function replaceOffsiteImages(root) {
  for (const image of root.querySelectorAll("img:not([src])")) {
    const alt = image.getAttribute("alt") || "";
    const target = image.getAttribute("data-offsite-src");
    if (!target) {
      // data:, javascript: and other schemes: keep only the description.
      image.replaceWith(document.createTextNode(alt));
      continue;
    }
    const figure = document.createElement("figure");
    figure.className = "offsite-image";
    const caption = document.createElement("figcaption");
    caption.textContent = alt || t("image", "Image");
    const link = document.createElement("a");
    link.href = target;
    link.textContent = t("open_image", "Open image");
    link.title = target;
    markExternal(link);
    figure.append(caption, link);
    image.replaceWith(figure);
  }
}

function wrapTables(root) {
  for (const table of root.querySelectorAll("table")) {
    const wrapper = document.createElement("div");
    wrapper.className = "table-scroll";
    table.replaceWith(wrapper);
    wrapper.append(table);
  }
}

function highlight(code, autoDetect) {
  const text = code.textContent;
  const language = (code.className.match(CODE_CLASS) || [""])[0].slice("language-".length);
  let result = null;
  if (language && hljs.getLanguage(language)) {
    result = hljs.highlight(text, { language, ignoreIllegals: true });
  } else if (!language && autoDetect && text.length <= AUTO_DETECT_MAX) {
    result = hljs.highlightAuto(text);
  }
  // highlight.js escapes the text it wraps in its <span>s, so its output is safe as HTML.
  if (result) code.innerHTML = result.value;
  code.classList.add("hljs");
  return language || result?.language || "";
}

function decorateCodeBlocks(root, autoDetect) {
  for (const pre of root.querySelectorAll("pre")) {
    let code = pre.querySelector("code");
    if (!code) {
      code = document.createElement("code");
      code.append(...pre.childNodes);
      pre.append(code);
    }
    const language = highlight(code, autoDetect);
    const block = document.createElement("div");
    block.className = "code-block";
    const bar = document.createElement("div");
    bar.className = "code-bar";
    const label = document.createElement("span");
    label.className = "code-language";
    label.textContent = language;
    const copy = document.createElement("button");
    copy.type = "button";
    copy.className = "btn-code-copy";
    copy.dataset.copyCode = "";
    copy.textContent = t("copy", "Copy");
    copy.setAttribute("aria-label", t("copy_code", "Copy code"));
    bar.append(label, copy);
    pre.replaceWith(block);
    // The <pre> scrolls sideways by itself and can be reached with the keyboard to do so.
    pre.tabIndex = 0;
    block.append(bar, pre);
  }
}

/**
 * Render markdown as a sanitised DocumentFragment.
 * `final: false` (while a reply streams) skips guessing the language of unlabelled code blocks,
 * which is the one expensive step.
 */
export function renderMarkdown(text, { final = true } = {}) {
  const html = marked.parse(String(text ?? ""), { async: false });
  const fragment = purifier.sanitize(html, PURIFY_CONFIG);
  replaceOffsiteImages(fragment);
  wrapTables(fragment);
  decorateCodeBlocks(fragment, final);
  return fragment;
}

// One listener for every code block's Copy button, present and future.
document.addEventListener("click", (event) => {
  const button = event.target instanceof Element ? event.target.closest("[data-copy-code]") : null;
  if (!button) return;
  const code = button.closest(".code-block")?.querySelector("pre code");
  if (!code) return;
  copyWithFeedback(button, code.textContent, t("copied", "Copied"), t("copy_failed", "Copy failed"));
});
