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

let querySeq = 0; // only the latest query may draw: an older answer can arrive later

async function runQuery(file) {
  const seq = ++querySeq;
  showMessage("");
  clearQuery();
  const mode = $("#query-faces").value;
  const params = new URLSearchParams({ k: $("#query-k").value || "10", faces: mode });
  if ($("#query-min").value !== "") params.set("min_similarity", $("#query-min").value);
  const form = new FormData();
  form.append("image", file);
  // Shown only once the browser has decoded it: never a broken-image icon.
  const shown = await showPhoto(file);
  if (seq !== querySeq) return;
  $("#photo-caption").textContent = "searching…";
  try {
    const result = await api(`/query?${params}`, { method: "POST", body: form });
    if (seq !== querySeq) return;
    if (!shown) showPlaceholder(result.width, result.height);
    drawFaces(result, mode);
  } catch (error) {
    if (seq !== querySeq) return;
    clearQuery();
    showMessage(error.message);
  }
}

function clearQuery() {
  // Nothing of the previous photo may survive: boxes, heading, cards, caption.
  $("#photo").hidden = true;
  $("#photo-frame").querySelectorAll(".face-box").forEach((box) => box.remove());
  $("#photo-frame").classList.remove("placeholder");
  $("#photo-frame").style.aspectRatio = "";
  $("#photo-caption").textContent = "";
  $("#results-title").hidden = true;
  $("#results-title").textContent = "";
  $("#results").replaceChildren();
}

async function showPhoto(file) {
  const img = $("#photo-img");
  if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(file);
  try {
    await img.decode();
    img.hidden = false;
    $("#photo").hidden = false;
    return true;
  } catch (error) {
    img.removeAttribute("src");
    img.hidden = true;
    return false;
  }
}

function showPlaceholder(width, height) {
  // A format the server reads but the browser does not (TIFF, PGM): boxes on a grey frame.
  $("#photo-frame").classList.add("placeholder");
  $("#photo-frame").style.aspectRatio = `${width} / ${height}`;
  $("#photo").hidden = false;
}

function verdict(face) {
  // "unknown" when no match is the same person: by the API's same_person where it says so,
  // else by there being no match at all (min_similarity, or an empty gallery).
  const judged = face.matches.filter((m) => typeof m.same_person === "boolean");
  if (!face.matches.length) return { unknown: true, judged: false };
  if (!judged.length) return { unknown: false, judged: false };
  const same = judged.find((m) => m.same_person);
  return { unknown: !same, judged: true, label: same ? same.label : null };
}

function drawFaces(result, mode) {
  const frame = $("#photo-frame");
  result.faces.forEach((face, index) => {
    const [x, y, w, h] = face.box;
    const { unknown } = verdict(face);
    const name = `Face ${index + 1}`;
    const box = element(
      "button",
      {
        type: "button",
        class: ["face-box", face.detected ? "" : "whole", unknown ? "unknown" : ""].join(" ").trim(),
        title: face.detected
          ? `${name}, score ${face.score.toFixed(2)}${unknown ? ", unknown" : ""}`
          : "no face found: whole image",
        "aria-label": name,
        "data-face": String(index + 1),
        onclick: () => selectFace(result, index),
      },
      element("span", { class: "face-num" }, String(index + 1)),
    );
    Object.assign(box.style, {
      left: `${(100 * x) / result.width}%`,
      top: `${(100 * y) / result.height}%`,
      width: `${(100 * w) / result.width}%`,
      height: `${(100 * h) / result.height}%`,
    });
    frame.append(box);
  });
  const t = result.timings;
  const only = mode === "largest" && result.face_found ? " (the largest only; choose Faces: all for every face)" : "";
  $("#photo-caption").textContent =
    `${result.faces.length} face(s)${only}${result.face_found ? "" : " (none detected: whole image searched)"} · ` +
    `${t.total_ms.toFixed(0)} ms (decode ${t.decode_ms.toFixed(0)}, detect ${t.detect_ms.toFixed(0)}, ` +
    `embed ${t.embed_ms.toFixed(0)}, search ${t.search_ms.toFixed(0)})`;
  if (result.faces.length) selectFace(result, 0);
}

function selectFace(result, index) {
  document.querySelectorAll(".face-box").forEach((box, i) => box.classList.toggle("selected", i === index));
  const matches = result.faces[index].matches;
  const { unknown, judged, label } = verdict(result.faces[index]);
  const name = `Face ${index + 1}`;
  let title;
  if (!matches.length) title = `${name}: unknown (no gallery face is similar enough, or the gallery is empty)`;
  else if (unknown) title = `${name}: unknown (nobody in the gallery is the same person); the most similar faces`;
  else if (judged) title = `${name}: ${label || "an unlabelled gallery person"}; ${matches.length} most similar gallery faces`;
  else title = `${name}: ${matches.length} most similar gallery faces`;
  $("#results-title").hidden = false;
  $("#results-title").textContent = title;
  $("#results-title").classList.toggle("unknown", unknown);
  $("#results").replaceChildren(...matches.map(matchCard));
}

function matchCard(match) {
  const img = element("img", { alt: match.label || "unlabelled face" });
  thumbnail(match.image_url).then((url) => (img.src = url)).catch(() => img.classList.add("missing"));
  const same = match.same_person === true ? " same" : match.same_person === false ? " other" : "";
  const caption = element(
    "figcaption",
    {},
    element("strong", {}, match.label || "—"),
    element("span", { class: "similarity" }, match.similarity.toFixed(3)),
  );
  if (match.same_person === true) caption.append(element("span", { class: "badge" }, "same person"));
  return element("figure", { class: `card match${same}`, title: match.source }, img, caption);
}

// ------------------------------------------------------------------ gallery view

async function enrol(event) {
  event.preventDefault();
  showMessage("");
  $("#enrol-report").textContent = "";
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

// ------------------------------------------------------------------ people view

let people = []; // the persons last listed, for the merge menu
let openPerson = null;

function personName(person) {
  return person.label || `Person ${person.id}`;
}

async function loadPeople() {
  $("#person").hidden = true;
  $("#people").hidden = false;
  openPerson = null;
  try {
    const page = await api("/people?limit=500");
    people = page.data;
    $("#people").replaceChildren(...people.map(personCard));
    $("#people-info").textContent = page.count
      ? `${page.count} people · ${page.unassigned} face(s) in nobody`
      : `No people yet: ${page.unassigned} face(s) to group. Press “Find people”.`;
  } catch (error) {
    showMessage(error.message);
  }
}

function personCard(person) {
  const img = element("img", { alt: personName(person) });
  thumbnail(person.image_url).then((url) => (img.src = url)).catch(() => img.classList.add("missing"));
  return element(
    "figure",
    {
      class: "card person",
      "data-person": String(person.id),
      title: personName(person),
      onclick: () => showPerson(person.id).catch(() => {}),
    },
    img,
    element(
      "figcaption",
      {},
      element("strong", { class: person.label ? "" : "muted" }, personName(person)),
      element("span", { class: "similarity" }, `${person.face_count} face(s)`),
    ),
  );
}

async function findPeople(event) {
  event.preventDefault();
  showMessage("");
  $("#people-cluster").disabled = true;
  try {
    const params = new URLSearchParams({ full: $("#people-full").checked });
    const done = await api(`/people/cluster?${params}`, { method: "POST" });
    showMessage(
      `${done.persons} people (${done.new_persons} new); ${done.joined} face(s) placed, ` +
        `${done.unassigned} in nobody yet.`,
      "ok",
    );
    await loadPeople();
  } catch (error) {
    showMessage(error.message);
  } finally {
    $("#people-cluster").disabled = false;
  }
}

async function showPerson(id) {
  const person = await guarded(api(`/people/${id}?limit=500`));
  openPerson = person;
  $("#people").hidden = true;
  $("#person").hidden = false;
  $("#person-label").value = person.label || "";
  $("#person-title").textContent = `${personName(person)}: ${person.face_count} face(s)`;
  const others = people.filter((p) => p.id !== person.id);
  $("#person-merge").replaceChildren(
    ...others.map((p) => element("option", { value: String(p.id) }, `${personName(p)} (${p.face_count})`)),
  );
  $("#person-merge-button").disabled = !others.length;
  $("#person-faces").replaceChildren(...person.faces.map((face) => personFaceCard(person, face)));
}

function personFaceCard(person, face) {
  const img = element("img", { alt: face.label || "face" });
  thumbnail(face.image_url).then((url) => (img.src = url)).catch(() => img.classList.add("missing"));
  const moveOut = async () => {
    const done = await guarded(
      api(`/people/${person.id}/faces/${encodeURIComponent(face.id)}`, { method: "DELETE" }),
    );
    showMessage(`Moved ${face.source} out of ${personName(person)}.`, "ok");
    if (done.person) await showPerson(person.id);
    else await loadPeople();
  };
  return element(
    "figure",
    { class: "card entry", title: `${face.source}\n${face.id}` },
    img,
    element(
      "figcaption",
      {},
      element("span", { class: "muted source" }, face.source),
      element("button", { type: "button", class: "danger", onclick: moveOut }, "Not this person"),
    ),
  );
}

async function namePerson() {
  const label = $("#person-label").value.trim() || null;
  await guarded(
    api(`/people/${openPerson.id}`, {
      method: "PATCH",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ label }),
    }),
  );
  showMessage(label ? `Named “${label}”; its faces are labelled so.` : "Name cleared.", "ok");
  await Promise.all([showPerson(openPerson.id), refreshInfo()]);
}

async function mergePerson() {
  const other = Number($("#person-merge").value);
  const name = $("#person-merge").selectedOptions[0].textContent;
  if (!confirm(`Move every face of ${name} into ${personName(openPerson)}?`)) return;
  await guarded(
    api(`/people/${openPerson.id}/merge`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ other }),
    }),
  );
  people = people.filter((p) => p.id !== other);
  showMessage(`Merged ${name} into ${personName(openPerson)}.`, "ok");
  await showPerson(openPerson.id);
}

// ------------------------------------------------------------------ wiring

function showView(name) {
  showMessage(""); // a banner belongs to the view it was raised in
  document.querySelectorAll(".tab").forEach((tab) => tab.classList.toggle("active", tab.dataset.view === name));
  document.querySelectorAll(".view").forEach((view) => (view.hidden = view.id !== `view-${name}`));
  if (name === "gallery") loadGallery();
  if (name === "people") loadPeople();
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".tab").forEach((tab) => tab.addEventListener("click", () => showView(tab.dataset.view)));
  $("#key-button").addEventListener("click", () => askForKey() && refreshInfo());
  $("#query-file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    event.target.value = ""; // so that choosing the same photo again (other options) searches again
    if (file) runQuery(file);
  });
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
  $("#people-form").addEventListener("submit", findPeople);
  $("#person-back").addEventListener("click", loadPeople);
  $("#person-save").addEventListener("click", () => namePerson().catch(() => {}));
  $("#person-merge-button").addEventListener("click", () => mergePerson().catch(() => {}));
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
