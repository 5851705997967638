"""The SVG sanitiser (media_jobs.svg): hostile documents come out harmless, benign ones keep
their drawing, and what cannot be read safely is refused with a reason."""

import codecs
import re
import xml.etree.ElementTree as ET

import pytest

from media_jobs.svg import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_ELEMENTS,
    SVG_NS,
    XLINK_NS,
    UnsafeSvg,
    css_is_safe,
    looks_like_svg,
    sanitize_svg,
)
from studio.simulator.recraft import entity_svg, hostile_svg, picture_svg, vector_from

SVG_OPEN = '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
KEPT_ATTRIBUTE_NAMES = ALLOWED_ATTRIBUTES | {"xlink:href", "xml:space", "xml:lang"}


def wrap(inner: str) -> bytes:
    return f"{SVG_OPEN}{inner}</svg>".encode()


def parse(output: bytes) -> ET.Element:
    return ET.fromstring(output)  # noqa: S314 - our own output, checked to have no DTD


def assert_harmless(output: bytes) -> ET.Element:
    """What any sanitised document must look like, whatever went in."""
    text = output.decode("utf-8")
    lowered = text.lower()
    assert "<!doctype" not in lowered and "<!entity" not in lowered
    for word in ("javascript", "vbscript", "evil.example", "@import", "expression", "<script"):
        assert word not in lowered, word
    root = parse(output)
    assert root.tag == f"{{{SVG_NS}}}svg"
    for element in root.iter():
        namespace, _, name = element.tag[1:].partition("}")
        assert namespace == SVG_NS and name in ALLOWED_ELEMENTS, element.tag
        assert name not in ("script", "foreignObject", "image", "feImage", "set", "animate")
        for attribute, value in element.attrib.items():
            plain = attribute.replace(f"{{{XLINK_NS}}}", "xlink:")
            plain = plain.replace("{http://www.w3.org/XML/1998/namespace}", "xml:")
            assert plain in KEPT_ATTRIBUTE_NAMES, attribute
            assert not plain.lower().startswith("on"), attribute
            if plain in ("href", "xlink:href"):
                assert value.startswith("#"), value
            for target in re.findall(r"url\(\s*['\"]?([^'\")]*)", value, re.IGNORECASE):
                assert target.strip().startswith("#"), value
    return root


def find(root: ET.Element, name: str) -> list[ET.Element]:
    return list(root.iter(f"{{{SVG_NS}}}{name}"))


# --- hostile documents ----------------------------------------------------------------------


HOSTILE = {
    "script element": "<script>alert(1)</script><rect width='1' height='1'/>",
    "script with href": f"<script xlink:href='https://evil.example/x.js'/>{'<g/>'}",
    "script in another case": "<SCRIPT>alert(1)</SCRIPT>",
    "onload on a shape": "<rect onload='alert(1)' width='1' height='1'/>",
    "handler in odd case": "<rect OnClick='alert(1)' onMouseOver='alert(2)' width='1'/>",
    "javascript link": "<a href='javascript:alert(1)'><rect width='1' height='1'/></a>",
    "javascript xlink with spaces": "<a xlink:href=' JaVaScRiPt:alert(1)'><circle r='1'/></a>",
    "external use": (
        "<use xlink:href='https://evil.example/s.svg#i'/><use href='//evil.example/a'/>"
    ),
    "external image": "<image href='https://evil.example/beacon.png'/>",
    "data image": "<image href='data:image/svg+xml;base64,PHN2Zz48c2NyaXB0Lz48L3N2Zz4='/>",
    "foreignObject html": (
        "<foreignObject><body xmlns='http://www.w3.org/1999/xhtml'>"
        "<iframe src='javascript:alert(1)'/><script>alert(2)</script></body></foreignObject>"
    ),
    "set rewriting href": "<a><set attributeName='href' to='javascript:alert(1)'/></a>",
    "animate rewriting href": "<animate attributeName='href' values='javascript:alert(1)'/>",
    "feImage": "<filter id='f'><feImage href='https://evil.example/f.png'/></filter>",
    "style element import": "<style>@import url(https://evil.example/x.css);</style>",
    "style element external url": "<style>rect{fill:url(https://evil.example/p.png)}</style>",
    "style element expression": "<style>rect{width:expression(alert(1))}</style>",
    "style element escape": "<style>rect{background:u\\72l(https://evil.example/a)}</style>",
    "style element comment trick": "<style>rect{fill:url/**/(https://evil.example/a)}</style>",
    "style attribute external url": (
        "<rect style=\"fill:url('https://evil.example/a.png');stroke:red\" width='1'/>"
    ),
    "style attribute behaviour": "<rect style='behavior:url(evil.htc);-moz-binding:url(x)'/>",
    "style attribute javascript": "<rect style='background:url(javascript:alert(1))'/>",
    "presentation attribute url": "<rect fill='url(https://evil.example/p#a)' width='1'/>",
    "mask to another file": "<rect mask='url(https://evil.example/m.svg#m)'/>",
    "html namespace element": (
        "<html:script xmlns:html='http://www.w3.org/1999/xhtml'>alert(1)</html:script>"
    ),
    "unknown element hiding a script": "<blink><script>alert(1)</script></blink>",
    "processing instruction": "<?xml-stylesheet href='https://evil.example/x.css'?><g/>",
    "base url": "<g xml:base='https://evil.example/'><use href='#a'/></g>",
    "iframe": "<iframe src='https://evil.example/'/>",
    "event attribute on root is handled below": "<g/>",
}


@pytest.mark.parametrize("inner", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_content_is_removed(inner):
    assert_harmless(sanitize_svg(wrap(inner)))


def test_handlers_on_the_root_element_go():
    source = (
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)" viewBox="0 0 4 4">'
        b"<rect width='4' height='4'/></svg>"
    )
    root = assert_harmless(sanitize_svg(source))
    assert root.get("viewBox") == "0 0 4 4" and "onload" not in root.attrib


def test_the_simulators_hostile_vectorize_result_is_disarmed_and_keeps_its_drawing():
    output = sanitize_svg(hostile_svg().encode())
    root = assert_harmless(output)
    assert "alert" not in output.decode()
    (rect,) = [e for e in find(root, "rect") if e.get("id") == "keep"]
    assert rect.get("fill") == "url(#grad)" and "onclick" not in rect.attrib
    (circle,) = find(root, "circle")
    # The external background went, the harmless stroke stayed.
    assert circle.get("fill") == "#123456" and circle.get("style") == "stroke:#000"
    assert find(root, "linearGradient") and len(find(root, "stop")) == 2
    # The link went; the path it wrapped is still drawn.
    assert [p.get("id") for p in find(root, "path")] == ["in-link"]
    assert [u.get("href") for u in find(root, "use") if u.get("href")] == ["#keep"]
    assert root.get("viewBox") == "0 0 100 100"


def test_the_simulators_entity_bomb_is_refused_before_parsing():
    with pytest.raises(UnsafeSvg, match="DOCTYPE or entities"):
        sanitize_svg(entity_svg().encode())


@pytest.mark.parametrize(
    "source",
    [
        b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/'
        b'DTD/svg11.dtd"><svg xmlns="http://www.w3.org/2000/svg"/>',
        b'<?xml version="1.0"?><!doctype svg [<!entity x SYSTEM "file:///etc/passwd">]>'
        b'<svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>',
        b'<svg xmlns="http://www.w3.org/2000/svg"><!ENTITY x "y"></svg>',
        "<!DOCTYPE svg><svg xmlns='http://www.w3.org/2000/svg'/>".encode("utf-16"),
    ],
)
def test_document_type_declarations_are_refused(source):
    with pytest.raises(UnsafeSvg, match="DOCTYPE"):
        sanitize_svg(source)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (b'<svg xmlns="http://www.w3.org/2000/svg"><path d="M0 0', "not well-formed"),
        (b"", "not well-formed"),
        (b"\x89PNG\r\n\x1a\n binary", "not UTF-8"),
        (b'<html xmlns="http://www.w3.org/1999/xhtml"><body/></html>', "not an SVG"),
        (b"<div><svg/></div>", "not an SVG"),
        (b'<svg xmlns="http://www.w3.org/2000/svg">&undefined;</svg>', "not well-formed"),
    ],
)
def test_what_cannot_be_read_as_svg_is_refused_with_a_reason(source, reason):
    with pytest.raises(UnsafeSvg, match=reason):
        sanitize_svg(source)


def test_nesting_and_size_are_bounded():
    deep = "<g>" * 300 + "</g>" * 300
    with pytest.raises(UnsafeSvg, match="deep"):
        sanitize_svg(wrap(deep))
    with pytest.raises(UnsafeSvg, match="larger than"):
        sanitize_svg(wrap("<g/>" * (5 * 1024 * 1024)))


# --- benign documents -----------------------------------------------------------------------


BENIGN = """<?xml version="1.0" encoding="UTF-8"?>
<!-- made by a vectoriser -->
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
     xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape"
     viewBox="0 0 200 100" width="200" height="100" preserveAspectRatio="xMidYMid meet"
     inkscape:version="1.3">
  <title>Logo</title>
  <defs>
    <linearGradient id="sky" x1="0" y1="0" x2="0" y2="1" gradientUnits="objectBoundingBox">
      <stop offset="0%" stop-color="#88ccff"/><stop offset="100%" stop-color="#ffffff"/>
    </linearGradient>
    <clipPath id="clip"><rect width="200" height="100" rx="8"/></clipPath>
    <symbol id="star" viewBox="0 0 10 10">
      <polygon points="5,0 6,4 10,4 7,6 8,10 5,7 2,10 3,6 0,4 4,4"/>
    </symbol>
    <filter id="soft"><feGaussianBlur stdDeviation="1.5"/></filter>
  </defs>
  <style>.ink { fill: #123; } .sky { fill: url(#sky); }</style>
  <g clip-path="url(#clip)" transform="translate(0 0)">
    <rect class="sky" width="200" height="100" fill="url('#sky')"/>
    <path d="M10 90 C 40 10, 65 10, 95 90 S 150 170, 180 90" stroke="#333" stroke-width="2"
          fill="none" stroke-linecap="round" style="stroke-dasharray: 4 2; opacity: 0.9"/>
    <circle cx="150" cy="30" r="12" fill="#ffcc00" filter="url(#soft)"/>
    <ellipse cx="40" cy="30" rx="10" ry="6" class="ink"/>
    <polyline points="0,100 50,80 100,100" fill="none" stroke="#000"/>
    <line x1="0" y1="0" x2="200" y2="100" stroke="#eee"/>
    <use xlink:href="#star" x="90" y="40" width="20" height="20"/>
    <inkscape:layer><circle r="99"/></inkscape:layer>
    <text x="100" y="95" text-anchor="middle" font-family="sans-serif"
      >Hello <tspan font-weight="bold">world</tspan> &amp; you</text>
  </g>
</svg>
"""


def test_a_benign_drawing_keeps_its_shapes_and_attributes():
    output = sanitize_svg(BENIGN.encode())
    root = assert_harmless(output)
    assert root.get("viewBox") == "0 0 200 100"
    assert root.get("preserveAspectRatio") == "xMidYMid meet"
    counts = {
        name: len(find(root, name))
        for name in ("rect", "path", "circle", "ellipse", "polyline", "line", "polygon", "use")
    }
    # The Inkscape layer's circle went with its foreign element; everything else is there.
    assert counts == {
        "rect": 2,
        "path": 1,
        "circle": 1,
        "ellipse": 1,
        "polyline": 1,
        "line": 1,
        "polygon": 1,
        "use": 1,
    }
    (path,) = find(root, "path")
    assert path.get("d").startswith("M10 90 C 40 10") and path.get("stroke-linecap") == "round"
    assert path.get("style") == "stroke-dasharray:4 2;opacity:0.9"
    (use,) = find(root, "use")
    assert use.get(f"{{{XLINK_NS}}}href") == "#star"
    assert find(root, "linearGradient")[0].get("gradientUnits") == "objectBoundingBox"
    assert find(root, "g")[0].get("clip-path") == "url(#clip)"
    assert find(root, "rect")[1].get("fill") == "url('#sky')"
    (style,) = find(root, "style")
    assert "url(#sky)" in style.text
    (text,) = find(root, "text")
    assert "".join(text.itertext()) == "Hello world & you"
    assert find(root, "title")[0].text == "Logo"
    assert find(root, "feGaussianBlur")[0].get("stdDeviation") == "1.5"
    assert not any("inkscape" in key for element in root.iter() for key in element.attrib)


def test_attribute_names_are_matched_case_sensitively():
    source = wrap("<rect viewBox='0 0 1 1' VIEWBOX='x' Width='9' width='1' FILL='red'/>")
    (rect,) = find(parse(sanitize_svg(source)), "rect")
    assert rect.attrib == {"viewBox": "0 0 1 1", "width": "1"}


def test_a_document_without_a_namespace_comes_out_as_svg():
    root = assert_harmless(sanitize_svg(b'<svg viewBox="0 0 2 2"><rect width="2"/></svg>'))
    assert find(root, "rect")[0].get("width") == "2"


def test_encodings_and_byte_order_marks_are_read():
    document = '<svg xmlns="http://www.w3.org/2000/svg"><text>雪 ❄</text></svg>'
    for encoded in (
        codecs.BOM_UTF8 + document.encode(),
        document.encode("utf-16"),
        b'<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n' + document.encode(),
    ):
        root = assert_harmless(sanitize_svg(encoded))
        assert find(root, "text")[0].text == "雪 ❄"


def test_the_output_is_stable():
    once = sanitize_svg(BENIGN.encode())
    assert sanitize_svg(once) == once


def test_the_simulators_ordinary_vectors_survive_whole():
    from PIL import Image

    picture = Image.new("RGB", (60, 40), (200, 30, 30))
    traced = vector_from(picture).encode()
    root = assert_harmless(sanitize_svg(traced))
    assert len(find(root, "rect")) == len(parse(traced).findall(f".//{{{SVG_NS}}}rect")) > 1
    drawn = picture_svg("a <b>bold</b> & bright fox", 300, 200).encode()
    root = assert_harmless(sanitize_svg(drawn))
    assert len(find(root, "circle")) == 4
    assert find(root, "text")[0].text == "a <b>bold</b> & bright fox"


# --- CSS and sniffing -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("css", "safe"),
    [
        ("fill: #fff; stroke: url(#a)", True),
        ("fill: url( '#grad' )", True),
        ('mask: url("#m")', True),
        ("fill: url(https://evil.example/a)", False),
        ("fill: URL(//evil.example/a)", False),
        ("fill: url(data:image/png;base64,AAAA)", False),
        ("@import 'x.css'", False),
        ("width: expression(alert(1))", False),
        ("width: EXPRESSION(alert(1))", False),
        ("background: u\\72l(x)", False),
        ("background: image-set('https://evil.example/a' 1x)", False),
        ("fill: url(#a) url(https://evil.example/b)", False),
        ("fill: url(#a", False),
        ("x: javascript:alert(1)", False),
    ],
)
def test_css_is_judged_by_where_it_reaches(css, safe):
    assert css_is_safe(css) is safe


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'<svg xmlns="http://www.w3.org/2000/svg"/>', True),
        (b'  \n<?xml version="1.0"?>\n<!-- x --><svg/>', True),
        (codecs.BOM_UTF8 + b"<svg/>", True),
        ("<svg/>".encode("utf-16"), True),
        (b"\x89PNG\r\n\x1a\n<svg>", False),
        (b"<html><body>no picture</body></html>", False),
        (b"", False),
    ],
)
def test_svg_is_recognised_by_its_bytes(content, expected):
    assert looks_like_svg(content) is expected
