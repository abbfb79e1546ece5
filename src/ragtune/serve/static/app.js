// ragtune web UI: no framework, no CDN. Talks to the same OpenAI-compatible API as any client.
"use strict";
const $ = (id) => document.getElementById(id);
const keyInput = $("api-key");
keyInput.value = localStorage.getItem("ragtune-key") || "";
keyInput.addEventListener("change", () => { localStorage.setItem("ragtune-key", keyInput.value); refresh(); });

function headers(extra = {}) {
  const h = { ...extra };
  if (keyInput.value) h["Authorization"] = "Bearer " + keyInput.value;
  return h;
}

function status(text, isError = false) {
  const el = $("status");
  el.textContent = text;
  el.className = isError ? "error" : "";
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers(options.headers || {}) });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error((body.error && body.error.message) || response.statusText);
  return body;
}

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function renderAnswer(text) {
  // The body before "Sources:" with [n] markers shown as superscripts; sources get their own list.
  const body = text.split("\n\nSources:")[0];
  $("answer").innerHTML = escapeHtml(body).replace(/\[(\d{1,2})\]/g, "<sup>[$1]</sup>");
}

function renderSources(extra) {
  const list = $("sources");
  list.innerHTML = "";
  const cited = new Set((extra.citations || []).map((c) => c.number));
  for (const source of extra.sources || []) {
    const li = document.createElement("li");
    li.value = source.number;
    if (cited.has(source.number)) li.className = "cited";
    const citation = (extra.citations || []).find((c) => c.number === source.number);
    li.innerHTML = `<strong>${escapeHtml(source.title || source.doc_id)}</strong> <span class="doc">${escapeHtml(source.doc_id)}</span>` +
      (citation ? `<div>${escapeHtml(citation.text.slice(0, 300))}</div>` : "");
    list.appendChild(li);
  }
  const flags = (extra.screening && extra.screening.chunks) || [];
  $("screening").hidden = flags.length === 0;
  $("screening").textContent = flags.length
    ? `Screening: ${flags.length} source passage(s) contained possible prompt injection and were ${[...new Set(flags.map((f) => f.action))].join("/")}.`
    : "";
}

async function ask(event) {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question) return;
  $("answer").textContent = "";
  $("sources").innerHTML = "";
  $("screening").hidden = true;
  $("ask").disabled = true;
  status("answering…");
  let text = "";
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: headers({ "Content-Type": "application/json" }),
      body: JSON.stringify({ model: $("arm").value, stream: true, messages: [{ role: "user", content: question }] }),
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error((body.error && body.error.message) || response.statusText);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut).trim();
        buffer = buffer.slice(cut + 2);
        if (!event.startsWith("data:")) continue;
        const data = event.slice(5).trim();
        if (data === "[DONE]") continue;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message);
        const delta = chunk.choices[0].delta.content || "";
        text += delta;
        renderAnswer(text);
        if (chunk.ragtune) renderSources(chunk.ragtune);
      }
    }
    status("done");
  } catch (error) {
    status(error.message, true);
  } finally {
    $("ask").disabled = false;
  }
}

async function loadModels() {
  const models = await api("/v1/models");
  const select = $("arm");
  const current = select.value;
  select.innerHTML = "";
  for (const model of models.data) {
    const option = document.createElement("option");
    option.value = model.id;
    option.textContent = `${model.id} — ${model.description}`;
    select.appendChild(option);
  }
  if (current) select.value = current;
}

async function loadDocuments() {
  const docs = await api("/v1/documents?limit=1000");
  const list = $("doc-list");
  list.innerHTML = "";
  if (docs.has_more) status("showing the first 1000 documents by id (GET /v1/documents?after=… pages on)");
  for (const doc of docs.data) {
    const li = document.createElement("li");
    li.dataset.id = doc.id;
    li.innerHTML = `<span>${escapeHtml(doc.title || doc.id)} <span class="groups">${escapeHtml(doc.id)}${doc.groups.length ? " · " + escapeHtml(doc.groups.join(", ")) : ""}</span></span>`;
    const remove = document.createElement("button");
    remove.className = "link";
    remove.title = "delete";
    remove.textContent = "✕";
    remove.addEventListener("click", async () => {
      try {
        await api("/v1/documents/" + encodeURIComponent(doc.id).replace(/%2F/g, "/"), { method: "DELETE" });
        status(`deleted ${doc.id}`);
        await loadDocuments();
      } catch (error) { status(error.message, true); }
    });
    li.appendChild(remove);
    list.appendChild(li);
  }
}

async function upload(event) {
  event.preventDefault();
  const file = $("doc-file").files[0];
  const id = $("doc-id").value.trim();
  const title = $("doc-title").value.trim();
  const groups = $("doc-groups").value.trim();
  const text = $("doc-text").value;
  try {
    let options;
    if (file) {
      const form = new FormData();
      form.append("file", file);
      if (id) form.append("id", id);
      if (title) form.append("title", title);
      if (groups) form.append("groups", groups);
      options = { body: form };
    } else if (text.trim()) {
      const body = { text, title };
      if (groups) body.groups = groups.split(",").map((g) => g.trim()).filter(Boolean);
      if (id) body.id = id;
      options = { body: JSON.stringify(body), headers: { "Content-Type": "application/json" } };
    } else {
      throw new Error("choose a file or paste some text");
    }
    const path = id ? "/v1/documents/" + encodeURIComponent(id).replace(/%2F/g, "/") : "/v1/documents";
    const result = await api(path, { method: id ? "PUT" : "POST", ...options });
    status(`${result.status} ${result.id} (${result.chunks} chunks)`);
    $("upload-form").reset();
    await loadDocuments();
  } catch (error) {
    status(error.message, true);
  }
}

async function refresh() {
  try {
    await loadModels();
    await loadDocuments();
    status("ready");
  } catch (error) {
    status(error.message, true);
  }
}

$("ask-form").addEventListener("submit", ask);
$("upload-form").addEventListener("submit", upload);
refresh();
