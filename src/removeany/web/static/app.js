/* RemoveAny pages: plain JavaScript, no build step, no third-party code.
 *
 * The workspace uploads with the JSON API (POST /api/v1/jobs) using the session cookie and the
 * session's CSRF token: every photo chosen, dropped or pasted becomes a job with a card in the
 * queue, followed by polling GET /api/v1/jobs/{id}; the stage shows one photo's before/after
 * comparison, a dialog enlarges a result, and finished results download one by one or as one
 * ZIP (GET /api/v1/jobs/results.zip). The home page's try-out posts one photo to /try and
 * shows the preview it answers. Visible text comes from the server (t()).
 */
(function () {
  "use strict";

  // Shared with the page scripts that load after this one (batch.js, watermark_editor.js).
  window.RemoveAny = {
    readStrings: readStrings,
    fmt: fmt,
    byId: byId,
    csrfToken: csrfToken,
    parseJSON: parseJSON,
    showBalance: showBalance,
    localizedError: localizedError,
  };

  var S = readStrings("ui-strings");
  // Per service: the workspace's title, progress and result headings (workspace.html).
  var SV = readStrings("service-strings");

  function readStrings(id) {
    var el = document.getElementById(id);
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

  // A job in one of these states never changes again (a cancelled one never runs).
  var FINAL = { succeeded: true, failed: true, cancelled: true };

  // The API answers in English; pages in Chinese show the sentence for the error's code.
  // A refusal that quotes the operator (strings.errorForms: [English, translation] with
  // {message}) keeps the operator's words inside the translated sentence.
  function localizedError(strings, code, message) {
    var form = code && strings.errorForms && strings.errorForms[code];
    if (form && message) {
      var parts = form[0].split("{message}");
      var inner = message.length - parts[0].length - parts[1].length;
      if (
        parts.length === 2 &&
        inner >= 0 &&
        message.indexOf(parts[0]) === 0 &&
        message.slice(message.length - parts[1].length) === parts[1]
      ) {
        return form[1].replace("{message}", message.substr(parts[0].length, inner));
      }
    }
    return (code && strings.errors && strings.errors[code]) || message;
  }

  function localized(code, message) {
    return localizedError(S, code, message);
  }

  function errorMessage(status, body) {
    if (body && body.error && body.error.message) {
      return localized(body.error.code, body.error.message);
    }
    if (status === 401) return S.signedOut;
    return S.failed;
  }

  function errorCode(body) {
    return (body && body.error && body.error.code) || "";
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

  /* ---- Zoom: a dialog with the full-size result, +/- buttons and keys ---------------------- */

  var ZOOM_STEPS = [0.1, 0.15, 0.25, 0.33, 0.5, 0.67, 0.75, 1, 1.5, 2, 3, 4, 6, 8];

  function initZoom(dialog) {
    if (!dialog || typeof dialog.showModal !== "function") return null;
    var view = dialog.querySelector(".zoom-view");
    var image = dialog.querySelector(".zoom-view img");
    var level = dialog.querySelector(".zoom-level");
    var heading = dialog.querySelector(".zoom-title");
    var size = { width: 0, height: 0 };
    var scale = 1;
    var opener = null;

    function fitScale() {
      if (!size.width || !size.height) return 1;
      var room = Math.min(
        (view.clientWidth - 8) / size.width,
        (view.clientHeight - 8) / size.height
      );
      return Math.max(0.05, Math.min(1, room));
    }

    function apply(next) {
      scale = Math.max(0.05, Math.min(8, next));
      image.style.width = Math.round(size.width * scale) + "px";
      image.style.height = Math.round(size.height * scale) + "px";
      level.textContent = Math.round(scale * 100) + "%";
    }

    function step(direction) {
      var next = scale;
      if (direction > 0) {
        next = ZOOM_STEPS.filter(function (s) { return s > scale + 0.001; })[0] || 8;
      } else {
        var smaller = ZOOM_STEPS.filter(function (s) { return s < scale - 0.001; });
        next = smaller.length ? smaller[smaller.length - 1] : scale;
      }
      apply(next);
    }

    dialog.querySelectorAll("[data-zoom]").forEach(function (button) {
      button.addEventListener("click", function () {
        var what = button.getAttribute("data-zoom");
        if (what === "in") step(1);
        else if (what === "out") step(-1);
        else apply(fitScale());
      });
    });
    dialog.querySelector("#zoom-close").addEventListener("click", function () {
      dialog.close();
    });
    dialog.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      if (event.key === "+" || event.key === "=") step(1);
      else if (event.key === "-" || event.key === "_") step(-1);
      else if (event.key === "0") apply(fitScale());
      else return;
      event.preventDefault();
    });
    // A click on the picture switches between "fit" and actual pixels.
    image.addEventListener("click", function () {
      var fit = fitScale();
      apply(Math.abs(scale - fit) < 0.01 ? Math.max(1, fit * 2) : fit);
    });
    dialog.addEventListener("close", function () {
      image.removeAttribute("src");
      if (opener && document.contains(opener)) opener.focus();
      opener = null;
    });

    return {
      open: function (src, name, width, height, alt) {
        opener = document.activeElement;
        size = { width: Number(width) || 0, height: Number(height) || 0 };
        heading.textContent = name;
        image.alt = alt || "";
        image.src = src;
        dialog.showModal();
        if (!size.width) {
          image.addEventListener(
            "load",
            function () {
              size = { width: image.naturalWidth, height: image.naturalHeight };
              apply(fitScale());
            },
            { once: true }
          );
        }
        apply(fitScale());
        view.focus();
      },
    };
  }

  /* ---- Workspace: a queue of photos, one job each ------------------------------------------ */

  var UPLOADS_AT_ONCE = 2;
  var ZIP_MAX_IDS = 100;
  var SAME_FORMAT = { "image/png": "png", "image/jpeg": "jpg", "image/webp": "webp" };

  function initWorkspace(ws) {
    var maxBytes = Number(ws.getAttribute("data-max-bytes")) || 0;
    var retentionHours = Number(ws.getAttribute("data-retention-hours")) || 24;
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
    var buyCredits = byId("upload-buy");
    var acceptTerms = byId("upload-terms");
    var form = byId("options-form");
    var colorInput = byId("bg-color");
    var bgImageInput = byId("bg-image");
    var serviceSelect = byId("service");
    var maskInput = byId("mask-file");
    var title = byId("ws-title");
    var queueBox = byId("queue");
    var queueList = byId("queue-list");
    var queueSummary = byId("queue-summary");
    var downloadAll = byId("download-all");
    var zoomResult = byId("zoom-result");
    var zoom = initZoom(byId("zoom"));
    var items = []; // every photo of this visit, oldest first
    var waiting = []; // photos not sent yet
    var sending = 0;
    var focused = null; // the photo the stage shows (progress or result)

    function service() {
      return serviceSelect ? serviceSelect.value : "remove_background";
    }

    function said(key, fallback, which) {
      var texts = SV[which || service()];
      return (texts && texts[key]) || fallback;
    }

    /* Show only the chosen service's options; the title says what the page will do. */
    function showService() {
      var chosen = service();
      ws.querySelectorAll("[data-services]").forEach(function (group) {
        group.hidden = group.getAttribute("data-services").split(" ").indexOf(chosen) === -1;
      });
      if (title) title.textContent = said("title", title.textContent);
    }

    function show(state) {
      dropzone.hidden = state !== "idle";
      busy.hidden = state !== "busy";
      result.hidden = state !== "done";
    }

    function showError(message, status, code) {
      errorBox.textContent = message || "";
      errorBox.hidden = !message;
      // Out of credits (402): offer the credits page right under the message.
      if (buyCredits) buyCredits.hidden = !message || status !== 402;
      // New terms to accept (published after this page was loaded, so it shows no banner):
      // offer the page that accepts them.
      if (acceptTerms) acceptTerms.hidden = !message || code !== "terms_not_accepted";
    }

    /* The API's form fields for the chosen service (POST /api/v1/jobs), read when photos are
       added: changing the options later applies to the next photos. */
    function options() {
      var chosen = { service: service() };
      if (chosen.service === "id_photo") {
        chosen.size = form.elements.id_size.value;
        var colour = form.querySelector('input[name="id_background"]:checked');
        chosen.background = colour ? colour.value : "white";
        chosen.format = form.elements.id_format.value;
        return chosen;
      }
      if (chosen.service === "remove_watermark") return chosen; // keeps the photo's format
      chosen.format = form.elements.format.value;
      var bg = form.querySelector('input[name="bg"]:checked');
      if (bg && bg.value === "color") chosen.bg_color = colorInput.value.replace("#", "");
      if (byId("crop").checked) chosen.crop = "true";
      return chosen;
    }

    function extraFiles(chosen) {
      var files = {};
      var bg = form.querySelector('input[name="bg"]:checked');
      var cutout = chosen.service === "remove_background" || chosen.service === "portrait";
      if (cutout && bg && bg.value === "image") {
        if (!bgImageInput || !bgImageInput.files[0]) return null;
        files.bg_image_file = bgImageInput.files[0];
      }
      var mask = chosen.service === "remove_watermark" && maskInput && maskInput.files[0];
      if (mask) files.mask_file = mask;
      return files;
    }

    /* ---- the stage: the focused photo's progress, or its before/after ---- */

    function stageProgress(item) {
      if (item !== focused || item.state === "succeeded" || item.state === "failed") return;
      fill.style.width = item.pct + "%";
      if (progressText.textContent !== item.text) progressText.textContent = item.text;
    }

    function showOnStage(item, moveFocus) {
      focused = item;
      compareSlot.textContent = "";
      if (!item) {
        busyImage.removeAttribute("src");
        show("idle");
        return;
      }
      if (item.state === "succeeded") {
        showError("");
        showResult(item, moveFocus);
      } else if (item.state === "failed") {
        show("idle");
        showError(item.error, item.httpStatus, item.errorCode);
      } else {
        showError("");
        busyImage.src = item.objectUrl;
        show("busy");
        stageProgress(item);
      }
    }

    function showResult(item, moveFocus) {
      var info = item.info;
      fill.style.width = "100%";
      compareSlot.textContent = "";
      compareSlot.appendChild(buildCompare(info, item.objectUrl));
      resultTitle.textContent = item.done || resultTitle.textContent;
      var label = (S.formats && S.formats[item.format]) || "PNG";
      download.textContent = fmt(S.download, { format: label });
      download.href = info.result_url;
      resultLink.href = "/jobs/" + encodeURIComponent(info.id);
      resultMeta.textContent = fmt(info.charged === 1 ? S.metaOne : S.meta, {
        width: info.result_width,
        height: info.result_height,
        charged: info.charged,
      });
      show("done");
      if (moveFocus) {
        resultTitle.focus({ preventScroll: true });
        result.scrollIntoView({ block: "nearest", behavior: "smooth" });
      }
    }

    /* ---- the queue: one card per photo ---- */

    function button(cls, text, label) {
      var node = el("button", { type: "button", class: cls, text: text });
      if (label) node.setAttribute("aria-label", label);
      return node;
    }

    function card(item) {
      item.thumbImage = el("img", { src: item.objectUrl, alt: "" });
      item.thumb = el("span", { class: "queue-thumb checker" }, [item.thumbImage]);
      item.status = el("span", { class: "queue-status" });
      item.bar = el("span");
      item.progress = el("div", {
        class: "progress",
        role: "progressbar",
        "aria-valuemin": "0",
        "aria-valuemax": "100",
        "aria-valuenow": "0",
        "aria-label": item.name,
      }, [item.bar]);
      item.nameNode = el("span", { class: "queue-name", text: item.name });
      item.actions = el("div", { class: "queue-actions" });
      item.li = el("li", { class: "queue-item", "data-state": "waiting" }, [
        item.thumb,
        el("div", { class: "queue-info" }, [item.nameNode, item.status, item.progress]),
        item.actions,
      ]);
      queueList.appendChild(item.li);
      queueBox.hidden = false;
    }

    function update(item, state, pct, text) {
      item.state = state;
      if (pct !== null) item.pct = pct;
      if (text) item.text = text;
      item.li.setAttribute("data-state", state);
      item.bar.style.width = item.pct + "%";
      item.progress.setAttribute("aria-valuenow", String(Math.round(item.pct)));
      item.progress.hidden = state === "succeeded" || state === "failed";
      if (item.status.textContent !== item.text) item.status.textContent = item.text;
      stageProgress(item);
      summarise();
    }

    function summarise() {
      var finished = items.filter(function (i) {
        return i.state === "succeeded" || i.state === "failed";
      }).length;
      var text = fmt(S.queueSummary, { done: finished, total: items.length });
      if (queueSummary.textContent !== text) queueSummary.textContent = text;
      var ids = items
        .filter(function (i) { return i.state === "succeeded"; })
        .map(function (i) { return i.info.id; })
        .slice(-ZIP_MAX_IDS);
      downloadAll.hidden = ids.length < 2;
      downloadAll.href = "/api/v1/jobs/results.zip?ids=" + ids.map(encodeURIComponent).join(",");
    }

    function openZoom(item) {
      if (!zoom || !item.info) return;
      zoom.open(item.info.result_url, item.name, item.info.result_width, item.info.result_height, S.afterAlt);
    }

    function finished(item) {
      var info = item.info;
      item.thumbImage.src = info.result_url;
      var link = el("a", { class: "queue-name", href: "/jobs/" + encodeURIComponent(info.id), text: item.name });
      item.nameNode.replaceWith(link);
      item.nameNode = link;
      var label = (S.formats && S.formats[item.format]) || "PNG";
      var showButton = button("button button-small button-secondary", S.show, fmt(S.showLabel, { name: item.name }));
      showButton.addEventListener("click", function () {
        showOnStage(item, true);
      });
      var enlarge = button("button button-small button-secondary", S.enlarge, fmt(S.enlargeLabel, { name: item.name }));
      enlarge.setAttribute("aria-haspopup", "dialog");
      enlarge.addEventListener("click", function () {
        openZoom(item);
      });
      var save = el("a", {
        class: "button button-small",
        href: info.result_url,
        download: "",
        "aria-label": fmt(S.downloadLabel, { name: item.name }) + " (" + label + ")",
        text: S.downloadShort,
      });
      item.actions.textContent = "";
      item.actions.appendChild(showButton);
      item.actions.appendChild(enlarge);
      item.actions.appendChild(save);
      // The thumbnail enlarges too (a pointer shortcut; the button is the keyboard way).
      item.thumb.classList.add("zoomable");
      item.thumb.addEventListener("click", function () {
        openZoom(item);
      });
    }

    /* ---- sending and following ---- */

    function add(files) {
      var chosen = options();
      var extra = extraFiles(chosen);
      if (extra === null) {
        showError(S.bgImageMissing);
        if (bgImageInput) bgImageInput.focus();
        return;
      }
      var first = null;
      var refused = "";
      Array.prototype.forEach.call(files, function (file) {
        if (file.type && file.type.indexOf("image/") !== 0) {
          refused = S.notImage;
          return;
        }
        if (maxBytes && file.size > maxBytes) {
          refused = fmt(S.tooLarge, { mb: Math.round(maxBytes / 1048576) });
          return;
        }
        var item = {
          file: file,
          name: file.name || "image.png",
          objectUrl: URL.createObjectURL(file),
          options: chosen,
          extra: extra,
          format: chosen.format || SAME_FORMAT[file.type] || "png",
          running: said("running", S.running, chosen.service),
          done: said("done", "", chosen.service),
          state: "waiting",
          pct: 0,
          text: S.status.queued || "",
          info: null,
        };
        items.push(item);
        card(item);
        update(item, "waiting", 0, fmt(S.uploading, { pct: 0 }));
        waiting.push(item);
        if (!first) first = item;
      });
      if (first) showOnStage(first, false);
      if (refused) showError(refused);
      else if (first) showError("");
      pump();
    }

    function pump() {
      while (sending < UPLOADS_AT_ONCE && waiting.length) send(waiting.shift());
    }

    function send(item) {
      sending += 1;
      var data = new FormData();
      data.append("file", item.file, item.name);
      Object.keys(item.options).forEach(function (name) {
        data.append(name, item.options[name]);
      });
      Object.keys(item.extra).forEach(function (name) {
        data.append(name, item.extra[name], item.extra[name].name || name + ".png");
      });
      var xhr = new XMLHttpRequest();
      var done = false;
      function settled() {
        if (done) return false;
        done = true;
        sending -= 1;
        pump();
        return true;
      }
      xhr.open("POST", "/api/v1/jobs");
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("X-CSRF-Token", csrfToken());
      xhr.upload.addEventListener("progress", function (event) {
        if (!event.lengthComputable) return;
        var pct = Math.round((event.loaded / event.total) * 100);
        update(item, "uploading", 2 + pct * 0.38, fmt(S.uploading, { pct: pct }));
      });
      xhr.addEventListener("load", function () {
        if (!settled()) return;
        var body = parseJSON(xhr.responseText);
        if (xhr.status >= 200 && xhr.status < 300 && body && body.id) follow(item, body);
        else fail(item, errorMessage(xhr.status, body), xhr.status, errorCode(body));
      });
      xhr.addEventListener("error", function () {
        if (settled()) fail(item, S.network);
      });
      update(item, "uploading", 2, fmt(S.uploading, { pct: 0 }));
      xhr.send(data);
    }

    function follow(item, state) {
      var delay = 350;
      var running = 55;
      var misses = 0;

      function step(info) {
        item.info = info;
        if (info.status === "succeeded") return succeed(item, info);
        if (FINAL[info.status]) {
          addJob(info);
          return fail(item, localized(info.error_code, info.error_message) || S.failed);
        }
        if (info.status === "running") {
          running = Math.min(94, running + (94 - running) * 0.12);
          update(item, "running", running, item.running);
        } else {
          update(item, "queued", 45, S.queued);
        }
        setTimeout(function () {
          getJSON("/api/v1/jobs/" + encodeURIComponent(info.id)).then(
            function (next) {
              misses = 0;
              step(next);
            },
            function (err) {
              misses += 1;
              if (err.status || misses > 5) fail(item, err.status ? err.message : S.network);
              else step(info);
            }
          );
        }, delay);
        delay = Math.min(delay * 1.25, 1500);
      }
      step(state);
    }

    function succeed(item, info) {
      update(item, "succeeded", 100, (S.status && S.status.succeeded) || "");
      finished(item);
      if (item === focused) showResult(item, true);
      refreshBalance();
      addJob(info);
    }

    function fail(item, message, status, code) {
      item.error = message;
      item.httpStatus = status;
      item.errorCode = code;
      update(item, "failed", 100, message);
      if (item === focused) {
        show("idle");
        showError(message, status, code);
      }
      refreshBalance();
    }

    /* ---- the recent jobs list ---- */

    function addJob(info) {
      var list = byId("job-list");
      // A page of older jobs: a new one belongs on the first page, not here.
      if (!list || list.hasAttribute("data-older-page")) return;
      var old = list.querySelector('[data-job-id="' + info.id + '"]');
      if (old) old.remove();
      var thumb = el("span", { class: "job-thumb checker" });
      if (info.status === "succeeded") {
        thumb.appendChild(el("img", { src: info.result_url, alt: "", loading: "lazy" }));
      }
      var until = new Date(new Date(info.created_at).getTime() + retentionHours * 3600000);
      var remove = el("form", {
        method: "post",
        action: "/app/jobs/" + encodeURIComponent(info.id) + "/delete-files",
        class: "inline-form",
      }, [
        el("input", { type: "hidden", name: "csrf_token", value: csrfToken() }),
        el("button", { type: "submit", class: "button button-small button-danger", text: S.deleteNow }, [
          el("span", { class: "visually-hidden", text: " " + fmt(S.deleteWhat, { name: info.input_name }) }),
        ]),
      ]);
      confirmBefore(remove, S.deleteConfirm);
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
        el("div", { class: "job-files" }, [
          el("span", {
            class: "job-retention",
            text: fmt(S.filesUntil, { when: utcLabel(until.toISOString()) }),
          }),
          FINAL[info.status] ? remove : null,
        ]),
      ]);
      list.insertBefore(item, list.firstChild);
      var pushedOff = false;
      while (list.children.length > 12) {
        list.removeChild(list.lastChild);
        pushedOff = true;
      }
      var older = byId("older-jobs");
      if (pushedOff && older) {
        // The jobs pushed off this page are older than its last one: "Older jobs" starts there.
        var last = list.lastElementChild.getAttribute("data-job-id");
        older.href = "/app?before=" + encodeURIComponent(last) + "#recent-title";
        older.hidden = false;
        byId("job-pager").hidden = false;
      }
      var empty = byId("no-jobs");
      if (empty) empty.hidden = true;
    }

    /* ---- ways in: choose, drop (anywhere on the workspace), paste ---- */

    function hasFiles(event) {
      var types = event.dataTransfer && event.dataTransfer.types;
      return !!types && Array.prototype.indexOf.call(types, "Files") !== -1;
    }

    function ownFileInput(target) {
      // The mask and background-photo fields take a dropped file themselves.
      return target && target.tagName === "INPUT" && target.type === "file" && target !== input;
    }

    ["dragenter", "dragover"].forEach(function (name) {
      ws.addEventListener(name, function (event) {
        if (!hasFiles(event) || ownFileInput(event.target)) return;
        event.preventDefault();
        event.dataTransfer.dropEffect = "copy";
        dropzone.classList.add("dragging");
      });
    });
    ws.addEventListener("dragleave", function (event) {
      if (!ws.contains(event.relatedTarget)) dropzone.classList.remove("dragging");
    });
    ws.addEventListener("drop", function (event) {
      if (ownFileInput(event.target)) return;
      event.preventDefault();
      dropzone.classList.remove("dragging");
      var files = event.dataTransfer && event.dataTransfer.files;
      if (files && files.length) add(files);
    });
    // A photo dropped beside the workspace must not navigate away from the page.
    window.addEventListener("dragover", function (event) {
      if (hasFiles(event)) event.preventDefault();
    });
    window.addEventListener("drop", function (event) {
      if (hasFiles(event)) event.preventDefault();
    });

    input.addEventListener("change", function () {
      if (input.files && input.files.length) add(input.files);
      input.value = "";
    });

    document.addEventListener("paste", function (event) {
      var files = event.clipboardData && event.clipboardData.files;
      if (!files || !files.length) return;
      var images = Array.prototype.filter.call(files, function (file) {
        return file.type.indexOf("image/") === 0;
      });
      if (!images.length) return;
      event.preventDefault();
      add(images);
    });

    again.addEventListener("click", function () {
      showError("");
      showOnStage(null);
      input.focus();
    });

    if (zoomResult) {
      zoomResult.hidden = !zoom;
      zoomResult.addEventListener("click", function () {
        if (focused) openZoom(focused);
      });
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
    });
    colorInput.addEventListener("input", function () {
      var radio = form.querySelector('input[name="bg"][value="color"]');
      if (radio) radio.checked = true;
    });
    if (bgImageInput) {
      bgImageInput.addEventListener("change", function () {
        var radio = form.querySelector('input[name="bg"][value="image"]');
        if (radio && bgImageInput.files.length) radio.checked = true;
      });
    }
    if (serviceSelect) {
      serviceSelect.addEventListener("change", showService);
      showService(); // a restored form (back button) may hold another service
    }
  }

  /* ---- Home page: try one photo without an account (web/trial.py) --------------------------- */

  function initTrial(form) {
    var maxBytes = Number(form.getAttribute("data-max-bytes")) || 0;
    var drop = byId("trial-drop");
    var input = byId("trial-file");
    var submit = byId("trial-submit");
    var busy = byId("trial-busy");
    var errorBox = byId("trial-error");
    var result = byId("trial-result");
    var heading = byId("trial-result-title");
    var slot = byId("trial-compare");
    var left = byId("trial-left");
    var again = byId("trial-again");
    var objectUrl = null;
    var sending = false;

    if (submit) submit.hidden = true; // choosing or dropping a photo sends it

    function showError(message) {
      errorBox.textContent = message || "";
      errorBox.hidden = !message;
    }

    function state(name) {
      drop.hidden = name !== "idle";
      busy.hidden = name !== "busy";
      result.hidden = name !== "done";
    }

    function triesLeft(n) {
      if (n === 0) return S.trialLeftNone;
      if (n === 1) return S.trialLeftOne;
      return fmt(S.trialLeft, { n: n });
    }

    function start(file) {
      if (sending) return;
      showError("");
      if (file.type && file.type.indexOf("image/") !== 0) return showError(S.notImage);
      if (maxBytes && file.size > maxBytes) {
        return showError(fmt(S.tooLarge, { mb: Math.round(maxBytes / 1048576) }));
      }
      if (objectUrl) URL.revokeObjectURL(objectUrl);
      objectUrl = URL.createObjectURL(file);
      var data = new FormData();
      data.append("csrf_token", form.elements.csrf_token.value);
      data.append("file", file, file.name || "image.png");
      sending = true;
      state("busy");
      fetch(form.getAttribute("action").split("#")[0], {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
        .then(function (response) {
          return response.text().then(function (text) {
            return { ok: response.ok, status: response.status, body: parseJSON(text) };
          });
        })
        .then(
          function (answer) {
            sending = false;
            if (!answer.ok || !answer.body || !answer.body.result) {
              state("idle");
              return showError(errorMessage(answer.status, answer.body));
            }
            var body = answer.body;
            slot.textContent = "";
            slot.appendChild(
              buildCompare(
                {
                  result_url: body.result,
                  result_width: body.width,
                  result_height: body.height,
                  input_width: body.width,
                  input_height: body.height,
                },
                objectUrl
              )
            );
            left.textContent = triesLeft(body.tries_left);
            state("done");
            heading.focus({ preventScroll: true });
            result.scrollIntoView({ block: "nearest", behavior: "smooth" });
          },
          function () {
            sending = false;
            state("idle");
            showError(S.network);
          }
        );
    }

    function hasFiles(event) {
      var types = event.dataTransfer && event.dataTransfer.types;
      return !!types && Array.prototype.indexOf.call(types, "Files") !== -1;
    }

    ["dragenter", "dragover"].forEach(function (name) {
      drop.addEventListener(name, function (event) {
        if (!hasFiles(event)) return;
        event.preventDefault();
        event.dataTransfer.dropEffect = "copy";
        drop.classList.add("dragging");
      });
    });
    drop.addEventListener("dragleave", function (event) {
      if (!drop.contains(event.relatedTarget)) drop.classList.remove("dragging");
    });
    drop.addEventListener("drop", function (event) {
      event.preventDefault();
      drop.classList.remove("dragging");
      var files = event.dataTransfer.files;
      if (files.length > 1) showError(S.oneFile);
      else if (files.length === 1) start(files[0]);
    });
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
      var files = event.clipboardData && event.clipboardData.files;
      if (drop.hidden || !files || !files.length) return;
      if (files[0].type.indexOf("image/") !== 0) return;
      event.preventDefault();
      start(files[0]);
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var file = input.files && input.files[0];
      if (file) start(file);
    });
    again.addEventListener("click", function (event) {
      event.preventDefault();
      showError("");
      slot.textContent = "";
      state("idle");
      input.focus();
    });
  }

  // The balance wherever the page shows it: the number, and after it the word in the form that
  // fits (each word carries both, translated on the server: _credit_count.html).
  function showBalance(available) {
    document.querySelectorAll("[data-balance]").forEach(function (node) {
      node.textContent = String(available);
    });
    document.querySelectorAll("[data-credit-word]").forEach(function (node) {
      node.textContent = node.getAttribute(available === 1 ? "data-one" : "data-many");
    });
  }

  function refreshBalance() {
    getJSON("/api/v1/credits").then(
      function (credits) {
        showBalance(credits.available);
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
          if (FINAL[info.status]) window.location.reload();
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

  function confirmBefore(form, question) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(question)) event.preventDefault();
    });
  }

  function initConfirmForms() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      confirmBefore(form, form.getAttribute("data-confirm"));
    });
  }

  function init() {
    document.querySelectorAll("[data-compare]").forEach(initCompare);
    var ws = byId("workspace");
    if (ws) initWorkspace(ws);
    var trial = byId("trial-form");
    if (trial) initTrial(trial);
    var poll = document.querySelector("[data-job-poll]");
    var section = document.querySelector("[data-job-id][data-job-status]");
    if (poll && section) followJobPage(section);
    initCopyButtons();
    initConfirmForms();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
