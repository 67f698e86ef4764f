/* RemoveAny pages: plain JavaScript, no build step, no third-party code.
 *
 * The workspace uploads with the JSON API (POST /api/v1/jobs) using the session cookie and the
 * session's CSRF token, follows the job by polling GET /api/v1/jobs/{id}, then shows a
 * before/after comparison and a download link. Visible text comes from the server (t()).
 */
(function () {
  "use strict";

  var S = readStrings();

  function readStrings() {
    var el = document.getElementById("ui-strings");
    if (!el) return {};
    try {
      return JSON.parse(el.textContent);
    } catch (e) {
      return {};
    }
  }

  function fmt(template, values) {
    return String(template || "").replace(/\{(\w+)\}/g, function (match, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? values[key] : match;
    });
  }

  function byId(id) {
    return document.getElementById(id);
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function parseJSON(text) {
    try {
      return JSON.parse(text);
    } catch (e) {
      return null;
    }
  }

  function errorMessage(status, body) {
    if (body && body.error && body.error.message) return body.error.message;
    if (status === 401) return S.signedOut;
    return S.failed;
  }

  function getJSON(url) {
    return fetch(url, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      cache: "no-store",
    }).then(function (response) {
      return response.text().then(function (text) {
        var body = parseJSON(text);
        if (!response.ok) {
          var err = new Error(errorMessage(response.status, body));
          err.status = response.status;
          throw err;
        }
        return body;
      });
    });
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") node.textContent = attrs[name];
      else node.setAttribute(name, attrs[name]);
    });
    (children || []).forEach(function (child) {
      if (child) node.appendChild(child);
    });
    return node;
  }

  /* The server's date style: "2026-01-31 14:05 UTC". */
  function utcLabel(iso) {
    var when = new Date(iso);
    if (isNaN(when.getTime())) return "";
    return when.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  /* ---- Before/after comparison ------------------------------------------------------------ */

  function initCompare(root) {
    var range = root.querySelector(".compare-range");
    var after = root.querySelector(".compare-after");
    var width = Number(after && after.getAttribute("width"));
    var height = Number(after && after.getAttribute("height"));
    if (width && height) root.style.setProperty("--ratio", String(width / height));

    function show(value) {
      range.value = String(value);
      root.style.setProperty("--pos", value + "%");
    }

    function fromPointer(event) {
      var box = root.getBoundingClientRect();
      var pct = ((event.clientX - box.left) / box.width) * 100;
      show(Math.max(0, Math.min(100, Math.round(pct * 10) / 10)));
    }

    range.addEventListener("input", function () {
      show(range.value);
    });
    root.addEventListener("pointerdown", function (event) {
      if (event.button !== 0) return;
      event.preventDefault();
      range.focus({ preventScroll: true });
      root.setPointerCapture(event.pointerId);
      fromPointer(event);
    });
    root.addEventListener("pointermove", function (event) {
      if (root.hasPointerCapture(event.pointerId)) fromPointer(event);
    });
    show(range.value || 50);
  }

  function buildCompare(job, beforeUrl) {
    var sameAspect =
      !job.result_width ||
      Math.abs(
        job.input_width / job.input_height - job.result_width / job.result_height
      ) /
        (job.input_width / job.input_height) <
        0.01;
    if (sameAspect) {
      var root = el("div", { class: "compare checker", "data-compare": "" }, [
        el("img", {
          class: "compare-after",
          src: job.result_url,
          width: job.result_width,
          height: job.result_height,
          alt: S.afterAlt,
        }),
        el("div", { class: "compare-before" }, [
          el("img", {
            src: beforeUrl,
            width: job.input_width,
            height: job.input_height,
            alt: S.beforeAlt,
          }),
        ]),
        el("div", { class: "compare-handle", "aria-hidden": "true" }),
        el("span", { class: "compare-tag tag-before", "aria-hidden": "true", text: S.before }),
        el("span", { class: "compare-tag tag-after", "aria-hidden": "true", text: S.after }),
        el("input", {
          class: "compare-range",
          type: "range",
          min: "0",
          max: "100",
          value: "50",
          "aria-label": S.compare,
        }),
      ]);
      initCompare(root);
      return root;
    }
    return el("div", { class: "side-by-side" }, [
      el("figure", {}, [
        el("img", { src: beforeUrl, alt: S.beforeAlt }),
        el("figcaption", { text: S.before }),
      ]),
      el("figure", {}, [
        el("div", { class: "checker" }, [el("img", { src: job.result_url, alt: S.afterAlt })]),
        el("figcaption", { text: S.after }),
      ]),
    ]);
  }

  /* ---- Workspace ---------------------------------------------------------------------------- */

  function initWorkspace(ws) {
    var maxBytes = Number(ws.getAttribute("data-max-bytes")) || 0;
    var dropzone = byId("dropzone");
    var input = byId("file-input");
    var busy = byId("busy");
    var busyImage = byId("busy-image");
    var fill = byId("progress-fill");
    var progressText = byId("progress-text");
    var result = byId("result");
    var resultTitle = byId("result-title");
    var compareSlot = byId("compare-slot");
    var download = byId("download");
    var resultLink = byId("result-link");
    var resultMeta = byId("result-meta");
    var again = byId("again");
    var errorBox = byId("upload-error");
    var form = byId("options-form");
    var colorInput = byId("bg-color");
    var current = null;

    function show(state) {
      dropzone.hidden = state !== "idle";
      busy.hidden = state !== "busy";
      result.hidden = state !== "done";
    }

    function showError(message) {
      errorBox.textContent = message || "";
      errorBox.hidden = !message;
    }

    function setProgress(pct, text) {
      fill.style.width = pct + "%";
      if (text && progressText.textContent !== text) progressText.textContent = text;
    }

    function reset() {
      if (current) {
        if (current.xhr) current.xhr.abort();
        clearTimeout(current.timer);
        URL.revokeObjectURL(current.objectUrl);
      }
      current = null;
      compareSlot.textContent = "";
      busyImage.removeAttribute("src");
    }

    function options() {
      var chosen = {};
      chosen.format = form.elements.format.value;
      var bg = form.querySelector('input[name="bg"]:checked');
      if (bg && bg.value === "color") chosen.bg_color = colorInput.value.replace("#", "");
      if (byId("crop").checked) chosen.crop = "true";
      return chosen;
    }

    function failWith(message) {
      reset();
      show("idle");
      showError(message);
      refreshBalance();
    }

    function start(file) {
      showError("");
      if (file.type && file.type.indexOf("image/") !== 0) {
        showError(S.notImage);
        return;
      }
      if (maxBytes && file.size > maxBytes) {
        showError(fmt(S.tooLarge, { mb: Math.round(maxBytes / 1048576) }));
        return;
      }
      reset();
      var chosen = options();
      var job = { objectUrl: URL.createObjectURL(file), format: chosen.format, timer: null };
      current = job;
      busyImage.src = job.objectUrl;
      setProgress(2, fmt(S.uploading, { pct: 0 }));
      show("busy");

      var data = new FormData();
      data.append("file", file, file.name || "image");
      Object.keys(chosen).forEach(function (name) {
        data.append(name, chosen[name]);
      });
      var xhr = new XMLHttpRequest();
      job.xhr = xhr;
      xhr.open("POST", "/api/v1/jobs");
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("X-CSRF-Token", csrfToken());
      xhr.upload.addEventListener("progress", function (event) {
        if (!event.lengthComputable || current !== job) return;
        var pct = Math.round((event.loaded / event.total) * 100);
        setProgress(2 + pct * 0.38, fmt(S.uploading, { pct: pct }));
      });
      xhr.addEventListener("load", function () {
        if (current !== job) return;
        job.xhr = null;
        var body = parseJSON(xhr.responseText);
        if (xhr.status >= 200 && xhr.status < 300 && body && body.id) follow(job, body);
        else failWith(errorMessage(xhr.status, body));
      });
      xhr.addEventListener("error", function () {
        if (current === job) failWith(S.network);
      });
      xhr.send(data);
    }

    function follow(job, state) {
      var delay = 350;
      var running = 55;
      var misses = 0;

      function step(info) {
        if (current !== job) return;
        if (info.status === "succeeded") return finish(job, info);
        if (info.status === "failed") {
          addJob(info);
          return failWith(info.error_message || S.failed);
        }
        if (info.status === "running") {
          running = Math.min(94, running + (94 - running) * 0.12);
          setProgress(running, S.running);
        } else {
          setProgress(45, S.queued);
        }
        job.timer = setTimeout(function () {
          getJSON("/api/v1/jobs/" + encodeURIComponent(info.id)).then(
            function (next) {
              misses = 0;
              step(next);
            },
            function (err) {
              misses += 1;
              if (err.status || misses > 5) failWith(err.status ? err.message : S.network);
              else step(info);
            }
          );
        }, delay);
        delay = Math.min(delay * 1.25, 1500);
      }
      step(state);
    }

    function finish(job, info) {
      setProgress(100);
      compareSlot.textContent = "";
      compareSlot.appendChild(buildCompare(info, job.objectUrl));
      var label = (S.formats && S.formats[job.format]) || "PNG";
      download.textContent = fmt(S.download, { format: label });
      download.href = info.result_url;
      resultLink.href = "/jobs/" + encodeURIComponent(info.id);
      resultMeta.textContent = fmt(info.charged === 1 ? S.metaOne : S.meta, {
        width: info.result_width,
        height: info.result_height,
        charged: info.charged,
      });
      show("done");
      resultTitle.focus({ preventScroll: true });
      result.scrollIntoView({ block: "nearest", behavior: "smooth" });
      refreshBalance();
      addJob(info);
    }

    function addJob(info) {
      var list = byId("job-list");
      if (!list) return;
      var old = list.querySelector('[data-job-id="' + info.id + '"]');
      if (old) old.remove();
      var thumb = el("span", { class: "job-thumb checker" });
      if (info.status === "succeeded") {
        thumb.appendChild(el("img", { src: info.result_url, alt: "", loading: "lazy" }));
      }
      var item = el("li", { class: "job-item", "data-job-id": info.id }, [
        el("a", { class: "job-link", href: "/jobs/" + encodeURIComponent(info.id) }, [
          thumb,
          el("span", { class: "job-info" }, [
            el("span", { class: "job-name", text: info.input_name }),
            el("span", { class: "job-meta" }, [
              el("time", { datetime: info.created_at, text: utcLabel(info.created_at) }),
            ]),
          ]),
          el("span", {
            class: "badge badge-" + info.status,
            text: (S.status && S.status[info.status]) || info.status,
          }),
        ]),
      ]);
      list.insertBefore(item, list.firstChild);
      while (list.children.length > 12) list.removeChild(list.lastChild);
      var empty = byId("no-jobs");
      if (empty) empty.hidden = true;
    }

    function hasFiles(event) {
      var types = event.dataTransfer && event.dataTransfer.types;
      return !!types && Array.prototype.indexOf.call(types, "Files") !== -1;
    }

    ["dragenter", "dragover"].forEach(function (name) {
      dropzone.addEventListener(name, function (event) {
        if (!hasFiles(event)) return;
        event.preventDefault();
        event.dataTransfer.dropEffect = "copy";
        dropzone.classList.add("dragging");
      });
    });
    dropzone.addEventListener("dragleave", function (event) {
      if (!dropzone.contains(event.relatedTarget)) dropzone.classList.remove("dragging");
    });
    dropzone.addEventListener("drop", function (event) {
      event.preventDefault();
      dropzone.classList.remove("dragging");
      var files = event.dataTransfer.files;
      if (files.length > 1) showError(S.oneFile);
      else if (files.length === 1) start(files[0]);
    });
    // A photo dropped beside the zone must not navigate away from the page.
    window.addEventListener("dragover", function (event) {
      if (hasFiles(event)) event.preventDefault();
    });
    window.addEventListener("drop", function (event) {
      if (hasFiles(event)) event.preventDefault();
    });

    input.addEventListener("change", function () {
      var file = input.files && input.files[0];
      if (file) start(file);
      input.value = "";
    });

    document.addEventListener("paste", function (event) {
      if (dropzone.hidden || !event.clipboardData) return;
      var items = event.clipboardData.files;
      if (items && items.length && items[0].type.indexOf("image/") === 0) {
        event.preventDefault();
        start(items[0]);
      }
    });

    again.addEventListener("click", function () {
      reset();
      showError("");
      show("idle");
      input.focus();
    });

    form.addEventListener("submit", function (event) {
      event.preventDefault();
    });
    colorInput.addEventListener("input", function () {
      var radio = form.querySelector('input[name="bg"][value="color"]');
      if (radio) radio.checked = true;
    });
  }

  function refreshBalance() {
    getJSON("/api/v1/credits").then(
      function (credits) {
        document.querySelectorAll("[data-balance]").forEach(function (node) {
          node.textContent = String(credits.available);
        });
      },
      function () {}
    );
  }

  /* ---- Job page: follow an unfinished job, then show the finished page ---------------------- */

  function followJobPage(section) {
    var id = section.getAttribute("data-job-id");
    var delay = 600;
    function tick() {
      getJSON("/api/v1/jobs/" + encodeURIComponent(id)).then(
        function (info) {
          if (info.status === "succeeded" || info.status === "failed") window.location.reload();
          else setTimeout(tick, (delay = Math.min(delay * 1.25, 2000)));
        },
        function () {
          setTimeout(tick, (delay = Math.min(delay * 2, 5000)));
        }
      );
    }
    setTimeout(tick, delay);
  }

  /* ---- Small helpers on every page -------------------------------------------------------- */

  function initCopyButtons() {
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var field = byId(button.getAttribute("data-copy"));
        if (!field) return;
        var original = button.textContent;
        function copied() {
          button.textContent = button.getAttribute("data-copied") || original;
          setTimeout(function () {
            button.textContent = original;
          }, 2000);
        }
        field.select();
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(field.value).then(copied, function () {});
        } else if (document.execCommand("copy")) {
          copied();
        }
      });
    });
  }

  function initConfirmForms() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
      });
    });
  }

  function init() {
    document.querySelectorAll("[data-compare]").forEach(initCompare);
    var ws = byId("workspace");
    if (ws) initWorkspace(ws);
    var poll = document.querySelector("[data-job-poll]");
    var section = document.querySelector("[data-job-id][data-job-status]");
    if (poll && section) followJobPage(section);
    initCopyButtons();
    initConfirmForms();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
