// digitdet's page: send one photo to POST /read, draw the digit boxes over it, show the number.
// No dependencies. The outcome is also exposed for tests on #result: data-state (idle, reading, done,
// error) and data-boxes (how many digit boxes were drawn).
"use strict";

const $ = (id) => document.getElementById(id);
const result = $("result");
let current = 0; // the latest photo's ticket: an older answer arriving late is dropped

function setState(state, text) {
  result.dataset.state = state;
  $("status").textContent = text || "";
  $("status").className = state;
}

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("the browser cannot show this image"));
    img.src = url;
  });
}

function inside(box, outer) {
  const cx = (box[0] + box[2]) / 2, cy = (box[1] + box[3]) / 2;
  return outer && cx >= outer[0] && cx <= outer[2] && cy >= outer[1] && cy <= outer[3];
}

// The photo scaled to the page, each digit's box (the best number's in green, others thin grey) with its
// digit, and the best number's box dashed. Boxes are in the pixels of the upright photo (r.width x r.height).
function draw(img, r) {
  const canvas = $("view");
  const w = r.width || img.naturalWidth, h = r.height || img.naturalHeight;
  const room = Math.max(240, Math.min(900, canvas.parentElement.clientWidth || 900));
  const scale = Math.min(room / w, 600 / h, 8);
  canvas.width = Math.max(1, Math.round(w * scale));
  canvas.height = Math.max(1, Math.round(h * scale));
  const ctx = canvas.getContext("2d");
  if (img) ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  const best = r.candidates.length ? r.candidates[0].box : null;
  const font = Math.max(12, Math.min(22, Math.round(canvas.height / 18)));
  ctx.font = `bold ${font}px system-ui, sans-serif`;
  ctx.textBaseline = "bottom";
  let drawn = 0;
  for (const d of r.digits) {
    const [x0, y0, x1, y1] = d.box.map((v) => v * scale);
    const main = inside(d.box, best);
    ctx.lineWidth = main ? 3 : 1.5;
    ctx.strokeStyle = main ? "#00e07a" : "rgba(220,220,220,.85)";
    ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    if (main) {
      const label = String(d.digit), tw = ctx.measureText(label).width + 6;
      const ly = y0 >= font + 2 ? y0 : y1 + font + 2;
      ctx.fillStyle = "#00e07a";
      ctx.fillRect(x0, ly - font - 2, tw, font + 2);
      ctx.fillStyle = "#002b17";
      ctx.fillText(label, x0 + 3, ly);
    }
    drawn += 1;
  }
  if (best) {
    const [x0, y0, x1, y1] = best.map((v) => v * scale);
    ctx.setLineDash([8, 5]);
    ctx.lineWidth = 2;
    ctx.strokeStyle = "#ff8c00";
    ctx.strokeRect(x0 - 4, y0 - 4, x1 - x0 + 8, y1 - y0 + 8);
    ctx.setLineDash([]);
  }
  result.dataset.boxes = String(drawn);
}

function show(r) {
  const number = $("number");
  number.textContent = r.number ?? "no number found";
  number.classList.toggle("none", r.number == null);
  $("confidence").textContent = r.number == null ? "" : `${Math.round(r.confidence * 100)} % confidence`;
  const list = $("candidates");
  list.replaceChildren();
  for (const c of r.candidates.slice(1, 9)) {
    const li = document.createElement("li");
    li.textContent = `${c.number}  (${Math.round(c.confidence * 100)} %)`;
    list.append(li);
  }
  if (r.candidates.length > 9) {
    const li = document.createElement("li");
    li.textContent = `… ${r.candidates.length - 9} more`;
    list.append(li);
  }
  $("others").hidden = r.candidates.length < 2;
  const n = r.digits.length;
  $("meta").textContent = `${r.file}: ${n} digit box${n === 1 ? "" : "es"} · ${r.width}×${r.height} px · ${r.ms} ms`;
}

async function readPhoto(file) {
  if (!file) return;
  const ticket = ++current;
  setState("reading", `Reading ${file.name || "the photo"}…`);
  result.dataset.boxes = "0";
  $("number").textContent = "";
  const url = URL.createObjectURL(file);
  const picture = loadImage(url).catch(() => null);
  const form = new FormData();
  form.append("image", file, file.name || "photo.jpg");
  let reply, body;
  try {
    reply = await fetch("/read", { method: "POST", body: form });
    body = await reply.json();
  } catch (e) {
    if (ticket === current) setState("error", `The server did not answer (${e.message}).`);
    URL.revokeObjectURL(url);
    return;
  }
  const img = await picture;
  URL.revokeObjectURL(url);
  if (ticket !== current) return;
  if (!reply.ok) {
    setState("error", body && body.error ? body.error : `Error ${reply.status}`);
    return;
  }
  if (img) draw(img, body);
  show(body);
  setState("done", img ? "" : "Read, but this browser cannot show the picture.");
}

for (const id of ["file", "camera"]) {
  $(id).addEventListener("change", (e) => {
    readPhoto(e.target.files[0]);
    e.target.value = ""; // the same file chosen again is read again
  });
}

const drop = $("drop");
for (const type of ["dragenter", "dragover"]) {
  drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
}
for (const type of ["dragleave", "drop"]) {
  drop.addEventListener(type, () => drop.classList.remove("over"));
}
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  readPhoto(e.dataTransfer.files[0]);
});
window.addEventListener("paste", (e) => {
  const item = [...(e.clipboardData ? e.clipboardData.files : [])].find((f) => f.type.startsWith("image/"));
  if (item) readPhoto(item);
});

$("here").textContent = location.origin + "/";
fetch("/health").then((r) => r.json()).then((h) => { $("model").textContent = `model ${h.model}`; }).catch(() => {});
