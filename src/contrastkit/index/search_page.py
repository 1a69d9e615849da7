"""The web page of ``contrastkit serve``: a text box, an image drop zone and a grid of results (no external assets).

With a service started with ``--token``, the page takes the token from its address's fragment
(``http://HOST:PORT/#token=TOKEN``: a fragment is never sent to the server; the page removes it from the address bar)
or asks for it when the service answers 401. It keeps it for the tab (``sessionStorage``), sends it as
``Authorization: Bearer`` with every call, and sets the ``contrastkit_token`` cookie (``SameSite=Strict``, path
``/thumbnail``) for the thumbnails, which ``<img>`` tags fetch without headers.
"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>contrastkit search</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body { font: 15px system-ui, sans-serif; margin: 1.5rem auto; max-width: 72rem; padding: 0 1rem; color: #222; }
 h1 { font-size: 1.3rem; } #status { color: #666; font-size: .9rem; }
 form { display: flex; gap: .5rem; margin: 1rem 0; } [hidden] { display: none !important; }
 #text, #token { flex: 1; padding: .5rem; font-size: 1rem; }
 #drop { border: 2px dashed #999; border-radius: .5rem; padding: 1.2rem; text-align: center; color: #555; }
 #drop.over { border-color: #2a6; background: #efe; }
 #error { color: #b00; margin: .5rem 0; min-height: 1.2rem; }
 #results { display: grid; grid-template-columns: repeat(auto-fill, minmax(9rem, 1fr)); gap: .8rem; }
 .result { border: 1px solid #ddd; border-radius: .4rem; padding: .4rem; font-size: .8rem; word-break: break-all; }
 .result img { width: 100%; image-rendering: pixelated; background: #f4f4f4; }
 .score { font-weight: bold; } .result a { color: #246; cursor: pointer; }
</style></head>
<body>
<h1>contrastkit search</h1>
<div id="status">loading...</div>
<form id="text-form"><input id="text" name="text" placeholder="describe what you are looking for" autocomplete="off">
<input id="k" type="number" min="1" max="1000" value="12" style="width:4.5rem"><button id="go" type="submit">Search</button></form>
<form id="token-form" hidden><input id="token" type="password" placeholder="this service needs its token" autocomplete="off">
<button id="token-go" type="submit">Use token</button></form>
<div id="drop">drop an image here, or <input id="file" type="file" accept="image/*"></div>
<div id="error"></div>
<div id="results"></div>
<script>
const $ = (id) => document.getElementById(id);
const TOKEN = "contrastkit_token";
let token = "";
function setToken(value) {
  token = value;
  if (!value) return;
  sessionStorage.setItem(TOKEN, value);
  document.cookie = TOKEN + "=" + value + "; path=/thumbnail; SameSite=Strict";
}
function tokenFromAddress() {
  const value = new URLSearchParams(location.hash.slice(1)).get("token");
  if (value) history.replaceState(null, "", location.pathname + location.search);  // out of the address bar
  return value;
}
setToken(tokenFromAddress() || sessionStorage.getItem(TOKEN) || "");
window.onhashchange = () => { const value = tokenFromAddress(); if (value) { setToken(value); start(); } };
function k() { return Math.max(1, Math.min(1000, parseInt($("k").value || "12", 10))); }
async function call(url, options) {
  $("error").textContent = "";
  options = options || {};
  if (token) options.headers = { Authorization: "Bearer " + token };
  const response = await fetch(url, options);
  let body = {};
  try { body = await response.json(); } catch (e) { body = {}; }
  if (response.status === 401) { $("token-form").hidden = false; $("token").focus(); }
  if (!response.ok) { $("error").textContent = body.error || ("error " + response.status); return null; }
  return body;
}
function show(body) {
  const grid = $("results"); grid.innerHTML = "";
  if (!body) return;
  for (const r of body.results) {
    const card = document.createElement("div"); card.className = "result";
    if (r.thumbnail) { const img = document.createElement("img"); img.src = r.thumbnail; img.alt = r.id; card.appendChild(img); }
    const score = document.createElement("div"); score.className = "score"; score.textContent = r.rank + ". " + r.score.toFixed(3);
    const id = document.createElement("a"); id.textContent = r.id; id.title = "more like this";
    id.onclick = async () => show(await call("/neighbours/" + encodeURIComponent(r.id) + "?k=" + k()));
    card.append(score, id); grid.appendChild(card);
  }
  grid.dataset.count = body.results.length;
}
async function searchImage(file) {
  const form = new FormData(); form.append("image", file);
  show(await call("/search?k=" + k(), { method: "POST", body: form }));
}
$("text-form").onsubmit = async (e) => {
  e.preventDefault();
  show(await call("/search?k=" + k() + "&text=" + encodeURIComponent($("text").value)));
};
$("file").onchange = (e) => { if (e.target.files.length) searchImage(e.target.files[0]); };
const drop = $("drop");
drop.ondragover = (e) => { e.preventDefault(); drop.classList.add("over"); };
drop.ondragleave = () => drop.classList.remove("over");
drop.ondrop = (e) => { e.preventDefault(); drop.classList.remove("over"); if (e.dataTransfer.files.length) searchImage(e.dataTransfer.files[0]); };
function start() {
  call("/health").then((h) => {
    if (!h) return;
    $("token-form").hidden = true;
    $("status").textContent = h.vectors + " vectors" + (h.text_queries ? ", text queries" : "") + (h.image_queries ? ", image queries" : "");
    if (!h.text_queries) { $("text").disabled = true; $("text").placeholder = "this index takes image queries"; }
    if (!h.image_queries) { drop.style.display = "none"; }
  });
}
$("token-form").onsubmit = (e) => { e.preventDefault(); setToken($("token").value.trim()); start(); };
start();
</script>
</body></html>
"""
