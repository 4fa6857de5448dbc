// facefind's web page: plain JS over the REST API (see /docs).
"use strict";

const $ = (selector) => document.querySelector(selector);
const PAGE_SIZE = 24;
const thumbs = new Map();
let apiKey = localStorage.getItem("facefind-api-key") || "";
let galleryOffset = 0;

// ------------------------------------------------------------------ API access

async function api(path, options = {}, retried = false) {
  const headers = new Headers(options.headers || {});
  if (apiKey) headers.set("X-API-Key", apiKey);
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401 && !retried && askForKey()) {
    return api(path, options, true);
  }
  const isJson = (response.headers.get("content-type") || "").includes("application/json");
  const body = isJson ? await response.json() : await response.blob();
  if (!response.ok) {
    throw new Error((body && body.detail) || `${response.status} ${response.statusText}`);
  }
  return body;
}

function askForKey() {
  const key = prompt("This facefind needs an API key (X-API-Key):", apiKey);
  if (key === null) return false;
  apiKey = key.trim();
  localStorage.setItem("facefind-api-key", apiKey);
  thumbs.clear();
  return true;
}

async function thumbnail(url) {
  // <img src> cannot send the API key header, so crops are fetched and shown as blobs.
  if (!thumbs.has(url)) {
    thumbs.set(url, api(url).then((blob) => URL.createObjectURL(blob)));
  }
  return thumbs.get(url);
}

function showMessage(text, kind = "error") {
  const box = $("#message");
  box.textContent = text;
  box.className = kind;
  box.hidden = !text;
}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

async function refreshInfo() {
  try {
    const info = await api("/info");
    $("#info").textContent =
      `${info.gallery_size} faces, ${info.labels} labels · model ${info.model.name} ` +
      `(${info.model.fingerprint}) · ${info.index_type} index · ${info.model.device}`;
  } catch (error) {
    $("#info").textContent = "";
  }
}

// ------------------------------------------------------------------ search view

async function runQuery(file) {
  showMessage("");
  const params = new URLSearchParams({ k: $("#query-k").value || "10", faces: $("#query-faces").value });
  if ($("#query-min").value !== "") params.set("min_similarity", $("#query-min").value);
  const form = new FormData();
  form.append("image", file);
  $("#photo-img").src = URL.createObjectURL(file);
  $("#photo").hidden = false;
  $("#photo-caption").textContent = "searching…";
  $("#results").replaceChildren();
  try {
    const result = await api(`/query?${params}`, { method: "POST", body: form });
    drawFaces(result);
  } catch (error) {
    $("#photo-caption").textContent = "";
    showMessage(error.message);
  }
}

function drawFaces(result) {
  const frame = $("#photo-frame");
  frame.querySelectorAll(".face-box").forEach((box) => box.remove());
  result.faces.forEach((face, index) => {
    const [x, y, w, h] = face.box;
    const box = element("button", {
      type: "button",
      class: face.detected ? "face-box" : "face-box whole",
      title: face.detected ? `face ${index + 1}, score ${face.score.toFixed(2)}` : "no face found: whole image",
      onclick: () => selectFace(result, index),
    });
    Object.assign(box.style, {
      left: `${(100 * x) / result.width}%`,
      top: `${(100 * y) / result.height}%`,
      width: `${(100 * w) / result.width}%`,
      height: `${(100 * h) / result.height}%`,
    });
    frame.append(box);
  });
  const t = result.timings;
  $("#photo-caption").textContent =
    `${result.faces.length} face(s)${result.face_found ? "" : " (none detected: whole image searched)"} · ` +
    `${t.total_ms.toFixed(0)} ms (decode ${t.decode_ms.toFixed(0)}, detect ${t.detect_ms.toFixed(0)}, ` +
    `embed ${t.embed_ms.toFixed(0)}, search ${t.search_ms.toFixed(0)})`;
  if (result.faces.length) selectFace(result, 0);
}

function selectFace(result, index) {
  document.querySelectorAll(".face-box").forEach((box, i) => box.classList.toggle("selected", i === index));
  const matches = result.faces[index].matches;
  $("#results-title").hidden = false;
  $("#results-title").textContent = matches.length
    ? `Face ${index + 1}: ${matches.length} most similar gallery faces`
    : `Face ${index + 1}: no match (unknown person, or an empty gallery)`;
  $("#results").replaceChildren(...matches.map(matchCard));
}

function matchCard(match) {
  const img = element("img", { alt: match.label || "unlabelled face" });
  thumbnail(match.image_url).then((url) => (img.src = url)).catch(() => img.classList.add("missing"));
  return element(
    "figure",
    { class: "card match", title: match.source },
    img,
    element(
      "figcaption",
      {},
      element("strong", {}, match.label || "—"),
      element("span", { class: "similarity" }, match.similarity.toFixed(3)),
    ),
  );
}

// ------------------------------------------------------------------ gallery view

async function enrol(event) {
  event.preventDefault();
  showMessage("");
  const files = $("#enrol-files").files;
  if (!files.length) return;
  const form = new FormData();
  for (const file of files) form.append("images", file);
  if ($("#enrol-label").value.trim()) form.append("label", $("#enrol-label").value.trim());
  if ($("#enrol-metadata").value.trim()) form.append("metadata", $("#enrol-metadata").value.trim());
  const params = new URLSearchParams({
    faces: $("#enrol-faces").value,
    if_no_face: $("#enrol-whole").checked ? "whole_image" : "reject",
  });
  $("#enrol-submit").disabled = true;
  try {
    const result = await api(`/gallery?${params}`, { method: "POST", body: form });
    const fresh = result.added.filter((entry) => !entry.duplicate).length;
    const lines = [`Added ${fresh} face(s); ${result.added.length - fresh} already in the gallery.`];
    result.rejected.forEach((r) => lines.push(`Not added: ${r.detail}`));
    $("#enrol-report").textContent = lines.join("\n");
    $("#enrol-form").reset();
    $("#enrol-files-label").textContent = "Photos to add (one or more)";
    await Promise.all([loadGallery(), refreshInfo()]);
  } catch (error) {
    showMessage(error.message);
  } finally {
    $("#enrol-submit").disabled = false;
  }
}

async function loadGallery() {
  const params = new URLSearchParams({ offset: galleryOffset, limit: PAGE_SIZE });
  const label = $("#browse-label").value.trim();
  if (label) params.set("label", label);
  try {
    const page = await api(`/gallery?${params}`);
    $("#entries").replaceChildren(...page.data.map(entryCard));
    const last = Math.min(page.offset + page.data.length, page.count);
    $("#page-info").textContent = page.count ? `${page.offset + 1}–${last} of ${page.count}` : "empty";
    $("#prev-page").disabled = page.offset === 0;
    $("#next-page").disabled = last >= page.count;
  } catch (error) {
    showMessage(error.message);
  }
}

function entryCard(entry) {
  const img = element("img", { alt: entry.label || "unlabelled face" });
  thumbnail(entry.image_url).then((url) => (img.src = url)).catch(() => img.classList.add("missing"));
  const label = element("input", { type: "text", value: entry.label || "", placeholder: "no label" });
  const save = async () => {
    const value = label.value.trim();
    await guarded(api(`/gallery/${encodeURIComponent(entry.id)}`, {
      method: "PATCH",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ label: value || null }),
    }));
    showMessage(`Saved the label of ${entry.source}.`, "ok");
    refreshInfo();
  };
  const remove = async () => {
    if (!confirm(`Delete this face of ${entry.label || entry.source}?`)) return;
    await guarded(api(`/gallery/${encodeURIComponent(entry.id)}`, { method: "DELETE" }));
    await Promise.all([loadGallery(), refreshInfo()]);
  };
  return element(
    "figure",
    { class: "card entry", title: `${entry.source}\n${entry.id}` },
    img,
    element(
      "figcaption",
      {},
      label,
      element("button", { type: "button", onclick: save }, "Save"),
      element("button", { type: "button", class: "danger", onclick: remove }, "Delete"),
    ),
  );
}

async function guarded(promise) {
  try {
    return await promise;
  } catch (error) {
    showMessage(error.message);
    throw error;
  }
}

async function deleteLabel() {
  const label = $("#browse-label").value.trim();
  if (!label) return showMessage("Type the label to delete first.");
  if (!confirm(`Delete every face labelled "${label}"?`)) return;
  const result = await guarded(api(`/gallery?${new URLSearchParams({ label })}`, { method: "DELETE" }));
  showMessage(`Deleted ${result.deleted} face(s) labelled "${label}".`, "ok");
  galleryOffset = 0;
  await Promise.all([loadGallery(), refreshInfo()]);
}

// ------------------------------------------------------------------ wiring

function showView(name) {
  document.querySelectorAll(".tab").forEach((tab) => tab.classList.toggle("active", tab.dataset.view === name));
  document.querySelectorAll(".view").forEach((view) => (view.hidden = view.id !== `view-${name}`));
  if (name === "gallery") loadGallery();
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".tab").forEach((tab) => tab.addEventListener("click", () => showView(tab.dataset.view)));
  $("#key-button").addEventListener("click", () => askForKey() && refreshInfo());
  $("#query-file").addEventListener("change", (event) => event.target.files[0] && runQuery(event.target.files[0]));
  const drop = $("#drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files[0]) runQuery(event.dataTransfer.files[0]);
  });
  $("#enrol-files").addEventListener("change", (event) => {
    const count = event.target.files.length;
    $("#enrol-files-label").textContent = count ? `${count} photo(s) chosen` : "Photos to add (one or more)";
  });
  $("#enrol-form").addEventListener("submit", enrol);
  $("#browse-form").addEventListener("submit", (event) => {
    event.preventDefault();
    galleryOffset = 0;
    loadGallery();
  });
  $("#delete-label").addEventListener("click", () => deleteLabel().catch(() => {}));
  $("#prev-page").addEventListener("click", () => {
    galleryOffset = Math.max(0, galleryOffset - PAGE_SIZE);
    loadGallery();
  });
  $("#next-page").addEventListener("click", () => {
    galleryOffset += PAGE_SIZE;
    loadGallery();
  });
  refreshInfo();
});
