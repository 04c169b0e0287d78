"""Test-only pages for the real-browser tests: each includes the client through the template tag."""

from __future__ import annotations

import random
import struct
import time
import zlib
from pathlib import Path

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template import engines
from django.views.decorators.csrf import csrf_exempt

HEAD = """<!doctype html><html><head><meta charset="utf-8"><title>{{ title }}</title>
{% load perfmonitor %}{% perfmonitor_script flushInterval=500 %}
<style>body { font: 16px sans-serif; margin: 0; } main { padding: 16px; }
#banner { height: 320px; background: #fc6; }</style></head><body>"""

FAST = HEAD + """<main><h1>Algebra, lesson 3</h1>
<p>Solve for x: 2x + 3 = 11. Then book a class with your teacher.</p>
<button id="work">Check my answer</button>
<input id="name" placeholder="Your name">
<button id="load">Load lessons</button> <button id="fail">Load broken</button>
<button id="boom">Break</button> <button id="xhr">Load with XHR</button>
<button id="reject">Pay</button> <pre id="out"></pre></main>
<script>
document.getElementById("work").addEventListener("click", function () {
  var end = performance.now() + 250; while (performance.now() < end) {}  // a slow handler
  document.getElementById("out").textContent = "x = 4";
});
document.getElementById("load").addEventListener("click", function () {
  fetch("/browser-tests/data/7/?token=secret").then(function (r) { return r.json(); })
    .then(function (d) { document.getElementById("out").textContent = d.lessons.join(", "); });
});
document.getElementById("fail").addEventListener("click", function () {
  fetch("/browser-tests/data/7/?status=503").then(function (r) {
    document.getElementById("out").textContent = "status " + r.status;
  });
});
document.getElementById("boom").addEventListener("click", function () {
  setTimeout(function () { throw new TypeError("lesson 42 is not loaded"); }, 0);
});
document.getElementById("xhr").addEventListener("click", function () {
  var xhr = new XMLHttpRequest();
  xhr.open("POST", "/browser-tests/data/8/");
  xhr.onload = function () { document.getElementById("out").textContent = "xhr " + xhr.status; };
  xhr.send("{}");
});
document.getElementById("reject").addEventListener("click", function () {
  Promise.reject(new RangeError("card 4242 declined"));
});
</script></body></html>"""

SLOW = HEAD + """<main><p>Course catalogue</p>
<img id="hero" src="/browser-tests/slow-image/?delay=1500" width="900" height="600" alt="">
</main></body></html>"""

SHIFT = HEAD + """<main><div id="slot"></div><h1>Your bookings</h1>
<p>Monday 10:00 Algebra with Ms. Rivera</p><p>Tuesday 14:00 Physics with Mr. Chen</p>
<p>Thursday 09:00 Chemistry with Dr. Osei</p></main>
<script>
setTimeout(function () {  // a late banner pushes the content down, no user input involved
  var banner = document.createElement("div"); banner.id = "banner";
  document.getElementById("slot").appendChild(banner);
}, 400);
</script></body></html>"""


def _render(source: str, request: HttpRequest, title: str) -> HttpResponse:
    template = engines["django"].from_string(source)
    return HttpResponse(template.render({"title": title}, request))


def fast_page(request: HttpRequest) -> HttpResponse:
    return _render(FAST, request, "Lesson")


def slow_page(request: HttpRequest) -> HttpResponse:
    return _render(SLOW, request, "Catalogue")


def shifting_page(request: HttpRequest) -> HttpResponse:
    return _render(SHIFT, request, "Bookings")


@csrf_exempt  # the page posts without a token: this is an API stand-in, not a form
def lesson_data(request: HttpRequest, pk: int) -> JsonResponse:
    status = int(request.GET.get("status", 200))
    return JsonResponse({"lessons": ["Linear equations", "Inequalities"], "course": pk},
                        status=status)


def _png(width: int, height: int) -> bytes:
    """A noisy picture: Chrome ignores low-entropy (flat) images as LCP candidates."""
    noise = random.Random(7)
    raw = zlib.compress(b"".join(
        b"\x00" + bytes(noise.getrandbits(8) for _ in range(width * 3)) for _ in range(height)))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw)
            + chunk(b"IEND", b""))


HERO = _png(240, 160)


def slow_image(request: HttpRequest) -> HttpResponse:
    time.sleep(min(float(request.GET.get("delay", 0)), 5000) / 1000)
    return HttpResponse(HERO, content_type="image/png")


# Debian's node-react / node-react-dom packages ship React's UMD builds; the React page
# loads them as classic scripts and hands window.React to the hooks (bindReact).
REACT_UMD = {"react.js": Path("/usr/share/nodejs/react/umd/react.production.min.js"),
             "react-dom.js": Path("/usr/share/nodejs/react-dom/umd/react-dom.production.min.js")}

REACT = HEAD + """<div id="root"></div>
<script src="/browser-tests/vendor/react.js"></script>
<script src="/browser-tests/vendor/react-dom.js"></script>
<script type="module">
{% load static %}
import { bindReact, useInteractionTracking, usePerformanceScore, useRenderTracking,
         useUserJourney, useWebVitals } from "{% static 'perfmonitor/react.mjs' %}";
bindReact(window.React);
const h = React.createElement;
function Lessons() {
  useRenderTracking("LessonList");
  const vitals = useWebVitals();
  const score = usePerformanceScore();
  const track = useInteractionTracking("book_class");
  const journey = useUserJourney("login");
  const [booked, setBooked] = React.useState(0);
  const book = track(() => {
    const end = performance.now() + 60; while (performance.now() < end) {}
    setBooked((n) => n + 1);
  });
  return h("main", null, h("h1", null, "Lessons this week"),
    h("button", { id: "start", onClick: () => journey.start({ via: "react" }) }, "Log in"),
    h("button", { id: "book", onClick: book }, "Book a class"),
    h("button", { id: "done", onClick: () => journey.complete() }, "Done"),
    h("p", { id: "journey" }, journey.journeyId || ""),
    h("p", { id: "fcp" }, vitals.FCP ? "FCP " + Math.round(vitals.FCP.value) : ""),
    h("p", { id: "score" }, score ? "score " + score.score : ""),
    h("p", { id: "booked" }, "booked " + booked));
}
ReactDOM.createRoot(document.getElementById("root")).render(h(Lessons));
</script></body></html>"""


def react_page(request: HttpRequest) -> HttpResponse:
    return _render(REACT, request, "React lessons")


def react_vendor(request: HttpRequest, name: str) -> HttpResponse:
    path = REACT_UMD.get(name)
    if path is None or not path.exists():
        raise Http404(name)
    return HttpResponse(path.read_bytes(), content_type="text/javascript")
