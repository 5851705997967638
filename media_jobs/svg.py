"""SVG results made safe to keep and show: an allowlist sanitiser over the standard library's
ElementTree.

An SVG is a document, not a picture: it can carry scripts, event handlers, HTML inside
`<foreignObject>`, links to `javascript:` and to other sites, CSS that fetches or runs things,
and XML entity tricks (billion laughs, external entities). Studio shows results from its own
origin, so an SVG from the relay (Recraft's vectorize, its vector styles) is rebuilt from what
is known to be harmless before it is stored:

* DOCTYPE and ENTITY declarations are refused before the parser sees the document;
* only SVG elements on the allowlist survive; any other element goes with everything inside it
  (`script`, `foreignObject`, animation elements that can rewrite `href`, `image`, `feImage`,
  elements of other namespaces such as Inkscape's), except links (`a`), whose drawing is kept
  without the link;
* only allowlisted attributes survive, matched case-sensitively as XML is (`viewBox` stays,
  `onload` and `ONLOAD` go); `href` / `xlink:href` only when it points inside the document
  (`#id`); any value with `url(...)` only when every such reference is a fragment;
* CSS (`style` attributes, `<style>` elements) is kept only without external `url(...)`,
  `@import`, `expression`, escapes and the other ways CSS reaches outside the document.

The output is re-serialised XML (UTF-8, SVG as the default namespace). Anything that cannot be
read as an SVG raises `UnsafeSvg` with a reason fit for the job page.
"""

from __future__ import annotations

import codecs
import re
import xml.etree.ElementTree as ET
from typing import Final

SVG_NS: Final = "http://www.w3.org/2000/svg"
XLINK_NS: Final = "http://www.w3.org/1999/xlink"
XML_NS: Final = "http://www.w3.org/XML/1998/namespace"
SVG_MIME: Final = "image/svg+xml"

MAX_SVG_BYTES: Final = 20 * 1024 * 1024
MAX_DEPTH: Final = 200
MAX_ELEMENTS: Final = 500_000

ALLOWED_ELEMENTS: Final = frozenset(
    {
        "svg",
        "g",
        "defs",
        "symbol",
        "use",
        "title",
        "desc",
        "path",
        "rect",
        "circle",
        "ellipse",
        "line",
        "polyline",
        "polygon",
        "text",
        "tspan",
        "textPath",
        "linearGradient",
        "radialGradient",
        "stop",
        "pattern",
        "clipPath",
        "mask",
        "marker",
        "style",
        "filter",
        "feBlend",
        "feColorMatrix",
        "feComponentTransfer",
        "feComposite",
        "feConvolveMatrix",
        "feDiffuseLighting",
        "feDisplacementMap",
        "feDistantLight",
        "feDropShadow",
        "feFlood",
        "feFuncA",
        "feFuncB",
        "feFuncG",
        "feFuncR",
        "feGaussianBlur",
        "feMerge",
        "feMergeNode",
        "feMorphology",
        "feOffset",
        "fePointLight",
        "feSpecularLighting",
        "feSpotLight",
        "feTile",
        "feTurbulence",
    }
)
# Dropped themselves, their drawing kept (a link's shapes are part of the picture).
UNWRAPPED_ELEMENTS: Final = frozenset({"a"})
# Elements whose text is content; elsewhere text is only whitespace between tags.
TEXT_ELEMENTS: Final = frozenset({"text", "tspan", "textPath", "title", "desc", "style"})

ALLOWED_ATTRIBUTES: Final = frozenset(
    {
        # structure and geometry
        "id",
        "class",
        "style",
        "version",
        "viewBox",
        "preserveAspectRatio",
        "width",
        "height",
        "x",
        "y",
        "x1",
        "y1",
        "x2",
        "y2",
        "cx",
        "cy",
        "r",
        "rx",
        "ry",
        "fx",
        "fy",
        "fr",
        "d",
        "points",
        "pathLength",
        "transform",
        "href",
        # painting
        "fill",
        "fill-opacity",
        "fill-rule",
        "stroke",
        "stroke-width",
        "stroke-linecap",
        "stroke-linejoin",
        "stroke-miterlimit",
        "stroke-dasharray",
        "stroke-dashoffset",
        "stroke-opacity",
        "opacity",
        "color",
        "display",
        "visibility",
        "overflow",
        "clip-path",
        "clip-rule",
        "mask",
        "filter",
        "marker-start",
        "marker-mid",
        "marker-end",
        "paint-order",
        "vector-effect",
        "shape-rendering",
        "image-rendering",
        "color-interpolation",
        "color-interpolation-filters",
        "mix-blend-mode",
        "isolation",
        # gradients, patterns, clips, masks, markers
        "offset",
        "stop-color",
        "stop-opacity",
        "gradientUnits",
        "gradientTransform",
        "spreadMethod",
        "patternUnits",
        "patternContentUnits",
        "patternTransform",
        "clipPathUnits",
        "maskUnits",
        "maskContentUnits",
        "markerWidth",
        "markerHeight",
        "markerUnits",
        "refX",
        "refY",
        "orient",
        # text
        "font-family",
        "font-size",
        "font-weight",
        "font-style",
        "font-variant",
        "text-anchor",
        "dominant-baseline",
        "alignment-baseline",
        "baseline-shift",
        "letter-spacing",
        "word-spacing",
        "text-decoration",
        "writing-mode",
        "dx",
        "dy",
        "rotate",
        "textLength",
        "lengthAdjust",
        "startOffset",
        "method",
        "spacing",
        "side",
        # filters
        "filterUnits",
        "primitiveUnits",
        "in",
        "in2",
        "result",
        "stdDeviation",
        "edgeMode",
        "mode",
        "operator",
        "k1",
        "k2",
        "k3",
        "k4",
        "type",
        "values",
        "tableValues",
        "slope",
        "intercept",
        "amplitude",
        "exponent",
        "scale",
        "xChannelSelector",
        "yChannelSelector",
        "radius",
        "baseFrequency",
        "numOctaves",
        "seed",
        "stitchTiles",
        "flood-color",
        "flood-opacity",
        "lighting-color",
        "surfaceScale",
        "diffuseConstant",
        "specularConstant",
        "specularExponent",
        "kernelUnitLength",
        "kernelMatrix",
        "order",
        "divisor",
        "bias",
        "targetX",
        "targetY",
        "preserveAlpha",
        "azimuth",
        "elevation",
        "z",
        "pointsAtX",
        "pointsAtY",
        "pointsAtZ",
        "limitingConeAngle",
        # the `media` of a <style> element
        "media",
    }
)
# Parsed name -> the name written out (the root declares the xlink prefix when it is used).
_NAMESPACED_ATTRIBUTES: Final = {
    f"{{{XLINK_NS}}}href": "xlink:href",
    f"{{{XML_NS}}}space": "xml:space",
    f"{{{XML_NS}}}lang": "xml:lang",
}
_HREF_ATTRIBUTES: Final = frozenset({"href", "xlink:href"})

_DECLARATIONS = re.compile(r"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)", re.IGNORECASE)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>", re.IGNORECASE)
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_CSS_URL = re.compile(r"url\(\s*(?P<quote>['\"]?)(?P<target>.*?)(?P=quote)\s*\)", re.IGNORECASE)
_SCHEME_WORDS = re.compile(r"(java|vb|live)script\s*:|data\s*:\s*text/html", re.IGNORECASE)
# CSS that loads something, runs something, or hides either behind an escape or a comment.
_CSS_FORBIDDEN: Final = (
    "expression",
    "@import",
    "@font-face",
    "@namespace",
    "behavior",
    "-moz-binding",
    "image-set",
    "cross-fade",
    "element(",
    "image(",
    "src(",
    "paint(",
    "\\",
    "<",
)
_CSS_PROPERTY = re.compile(r"^-?[a-zA-Z][a-zA-Z0-9-]*$")


class UnsafeSvg(ValueError):
    """The document cannot be kept as an SVG; the message says why, for the job page."""


def looks_like_svg(content: bytes) -> bool:
    """Whether bytes are (meant as) an SVG document: markup whose start mentions `<svg`."""
    head = content[:4096]
    for bom in (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        if head.startswith(bom):
            head = _decode(content[:4096]).encode("utf-8", errors="replace")
            break
    stripped = head.lstrip()
    return stripped.startswith(b"<") and b"<svg" in stripped.lower()


def sanitize_svg(content: bytes) -> bytes:
    """The SVG rebuilt from its allowlisted parts, as UTF-8 bytes; raises UnsafeSvg when the
    bytes are not a readable SVG document (or declare a DTD / entities)."""
    if len(content) > MAX_SVG_BYTES:
        raise UnsafeSvg(f"the SVG is larger than {MAX_SVG_BYTES // (1024 * 1024)} MB")
    text = _decode(content)
    if _DECLARATIONS.search(text):
        raise UnsafeSvg("the SVG declares a DOCTYPE or entities, which are refused")
    text = _XML_DECLARATION.sub("", text, count=1)
    try:
        # DOCTYPE and entity declarations were refused above, which is what defusedxml adds.
        root = ET.fromstring(text.encode("utf-8"), parser=ET.XMLParser())  # noqa: S314
    except ET.ParseError as error:
        raise UnsafeSvg(f"the SVG is not well-formed XML ({error})") from None
    if _local_name(root.tag) != "svg":
        raise UnsafeSvg("the document is not an SVG picture (its root element is not <svg>)")
    clean = _rebuild(root, depth=0, counter=[0])
    if clean is None:  # unreachable: the root was checked to be <svg>
        raise UnsafeSvg("the document is not an SVG picture")
    # Written with literal namespace declarations: the tree holds plain names (ElementTree's
    # default_namespace option refuses the un-prefixed attributes every SVG has).
    clean.set("xmlns", SVG_NS)
    if any("xlink:href" in element.attrib for element in clean.iter()):
        clean.set("xmlns:xlink", XLINK_NS)
    return ET.tostring(clean, encoding="utf-8", xml_declaration=True)


def css_is_safe(css: str) -> bool:
    """Whether CSS stays inside the document: no external url(), no @import, no script."""
    text = _CSS_COMMENT.sub("", css)
    lowered = text.lower()
    if any(word in lowered for word in _CSS_FORBIDDEN) or _SCHEME_WORDS.search(text):
        return False
    references = list(_CSS_URL.finditer(text))
    if lowered.count("url(") != len(references):
        return False  # a url( the pattern could not read: refuse rather than guess
    return all(_is_fragment(match.group("target")) for match in references)


# --- internals ------------------------------------------------------------------------------


def _decode(content: bytes) -> str:
    if content.startswith(codecs.BOM_UTF8):
        content = content[len(codecs.BOM_UTF8) :]
    if content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return content.decode("utf-16")
        except UnicodeDecodeError:
            raise UnsafeSvg("the SVG is not valid UTF-16 text") from None
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsafeSvg("the SVG is not UTF-8 text") from None


def _local_name(tag: object) -> str | None:
    """The SVG element's name; None for another namespace (or a comment / PI node)."""
    if not isinstance(tag, str):
        return None
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return name if namespace == SVG_NS else None
    # No namespace at all: an SVG written without xmlns, read as SVG (it is output with one).
    return tag


def _rebuild(source: ET.Element, *, depth: int, counter: list[int]) -> ET.Element | None:
    if depth > MAX_DEPTH:
        raise UnsafeSvg(f"the SVG nests elements more than {MAX_DEPTH} deep")
    counter[0] += 1
    if counter[0] > MAX_ELEMENTS:
        raise UnsafeSvg(f"the SVG has more than {MAX_ELEMENTS} elements")
    name = _local_name(source.tag)
    if name not in ALLOWED_ELEMENTS:
        return None
    target = ET.Element(name, _clean_attributes(source.attrib))
    keeps_text = name in TEXT_ELEMENTS
    if name == "style":
        css = _CSS_COMMENT.sub("", "".join(source.itertext()))
        if not css_is_safe(css):
            return ET.Element("style")  # emptied: nothing of it is trusted
        target.text = css
        return target
    if keeps_text:
        target.text = source.text
    _append_children(target, source, depth=depth, counter=counter, keeps_text=keeps_text)
    return target


def _append_children(
    target: ET.Element,
    source: ET.Element,
    *,
    depth: int,
    counter: list[int],
    keeps_text: bool,
) -> None:
    for child in source:
        if _local_name(child.tag) in UNWRAPPED_ELEMENTS:
            if keeps_text and child.text:
                _add_text(target, child.text)
            _append_children(target, child, depth=depth + 1, counter=counter, keeps_text=keeps_text)
        elif (clean := _rebuild(child, depth=depth + 1, counter=counter)) is not None:
            target.append(clean)
        if keeps_text and child.tail:
            _add_text(target, child.tail)


def _add_text(parent: ET.Element, text: str) -> None:
    """Text after the parent's last child (or its first text): where a dropped child was."""
    if len(parent):
        last = parent[-1]
        last.tail = (last.tail or "") + text
    else:
        parent.text = (parent.text or "") + text


def _clean_attributes(attributes: dict[str, str]) -> dict[str, str]:
    kept: dict[str, str] = {}
    for raw_name, value in attributes.items():
        name = _NAMESPACED_ATTRIBUTES.get(raw_name) or (
            raw_name if raw_name in ALLOWED_ATTRIBUTES else None
        )
        if name is None:
            continue
        if name in _HREF_ATTRIBUTES:
            if _is_fragment(value):
                kept[name] = value.strip()
            continue
        if name == "style":
            if (style := _clean_style(value)) is not None:
                kept[name] = style
            continue
        if _value_is_safe(value):
            kept[name] = value
    return kept


def _clean_style(value: str) -> str | None:
    """A style attribute with only the declarations that stay inside the document."""
    kept = []
    for declaration in _CSS_COMMENT.sub("", value).split(";"):
        prop, colon, prop_value = declaration.partition(":")
        prop, prop_value = prop.strip(), prop_value.strip()
        if not colon or not _CSS_PROPERTY.match(prop) or not prop_value:
            continue
        if css_is_safe(prop_value):
            kept.append(f"{prop}:{prop_value}")
    return ";".join(kept) if kept else None


def _value_is_safe(value: str) -> bool:
    if _SCHEME_WORDS.search(value):
        return False
    if "url(" in value.lower():
        return css_is_safe(value)
    return True


def _is_fragment(target: str) -> bool:
    target = target.strip()
    return target.startswith("#") and not _SCHEME_WORDS.search(target)
