/* RemoveAny watermark editor (/app/watermark): plain JavaScript, no build step, no third-party
 * code.
 *
 * 1. The chosen photo is drawn on a canvas (#wm-photo) at the working size.
 * 2. POST /api/v1/watermark/detect (free) answers a PNG mask, white = watermark, at the working
 *    size (X-Mask-Width/-Height; the photo's own size is in X-Image-Width/-Height). It is drawn
 *    on the canvas above the photo (#wm-mask) as red, shown half transparent.
 * 3. Brush and eraser (pointer events: mouse, pen and touch), a size slider, undo, clear and
 *    "detect again" correct it. Keys, while the focus is in the editor: B brush, E eraser, [ and ]
 *    size, Ctrl+Z undo. Without a pointer, a box typed in the photo's pixels is marked or
 *    unmarked (#wm-box).
 * 4. "Remove watermark" scales the mask up to the photo's size (black and white PNG) and sends
 *    it as mask_file with the photo to POST /api/v1/jobs (service=remove_watermark), then opens
 *    the job page, which follows the job and shows the before/after and the download.
 * Visible text comes from the server (t()) in #editor-strings.
 */
(function () {
  "use strict";

  var UNDO_LIMIT = 12;
  var RED = [255, 0, 0];

  // Helpers from app.js, which every page loads first.
  var fmt = window.RemoveAny.fmt;
  var byId = window.RemoveAny.byId;
  var csrfToken = window.RemoveAny.csrfToken;
  var parseJSON = window.RemoveAny.parseJSON;
  var S = window.RemoveAny.readStrings("editor-strings");

  /** The API's error as a sentence in the page's language. */
  function apiError(status, body) {
    var error = body && body.error;
    if (error && (error.code || error.message)) {
      var text = window.RemoveAny.localizedError(S, error.code, error.message);
      if (text) return text;
    }
    if (status === 401) return S.signedOut;
    return S.failed;
  }

  function failure(status, text) {
    var body = parseJSON(text);
    var err = new Error(apiError(status, body));
    err.status = status;
    err.code = body && body.error ? body.error.code : "";
    return err;
  }

  function loadImage(url) {
    return new Promise(function (resolve, reject) {
      var img = new Image();
      img.onload = function () {
        resolve(img);
      };
      img.onerror = function () {
        reject(new Error(S.loadFailed));
      };
      img.src = url;
    });
  }

  function init(root) {
    var maxBytes = parseInt(root.getAttribute("data-max-bytes"), 10) || 0;
    var workSide = parseInt(root.getAttribute("data-work-side"), 10) || 2048;
    var pick = byId("wm-pick");
    var input = byId("wm-file");
    var wrap = byId("wm-canvas-wrap");
    var photo = byId("wm-photo");
    var mask = byId("wm-mask");
    var cursor = byId("wm-cursor");
    var statusBox = byId("wm-status");
    var errorBox = byId("wm-error");
    var buy = byId("wm-buy");
    var form = byId("wm-form");
    var size = byId("wm-size");
    var sizeValue = byId("wm-size-value");
    var undoButton = byId("wm-undo");
    var clearButton = byId("wm-clear");
    var detectButton = byId("wm-detect");
    var show = byId("wm-show");
    var submit = byId("wm-submit");
    var again = byId("wm-again");
    var tools = form.querySelectorAll('input[name="tool"]');
    var boxInputs = ["x", "y", "w", "h"].map(function (key) {
      return byId("wm-box-" + key);
    });
    var boxApply = byId("wm-box-apply");
    var boxSize = byId("wm-box-size");
    var photoCtx = photo.getContext("2d");
    var maskCtx = mask.getContext("2d", { willReadFrequently: true });

    var state = {
      file: null,
      image: null, // the decoded photo (HTMLImageElement)
      url: null,
      imageWidth: 0, // the photo's upright size, as the server decodes it
      imageHeight: 0,
      undo: [],
      stroke: null, // {id, x, y} while painting
      busy: false,
      detection: 0, // bumps on every request, so an old answer is ignored
    };

    function say(text) {
      statusBox.textContent = text || "";
    }

    function showError(message, status) {
      errorBox.textContent = message || "";
      errorBox.hidden = !message;
      buy.hidden = !message || status !== 402;
    }

    function tool() {
      var chosen = form.querySelector('input[name="tool"]:checked');
      return chosen ? chosen.value : "brush";
    }

    function setTool(name) {
      tools.forEach(function (radio) {
        radio.checked = radio.value === name;
      });
      cursor.classList.toggle("wm-erasing", name === "eraser");
      say(name === "eraser" ? S.eraser : S.brush);
    }

    function setControls(enabled) {
      tools.forEach(function (radio) {
        radio.disabled = !enabled;
      });
      var controls = [size, clearButton, detectButton, show, submit, boxApply];
      controls.concat(boxInputs).forEach(function (node) {
        node.disabled = !enabled;
      });
      undoButton.disabled = !enabled || state.undo.length === 0;
    }

    function showSize() {
      sizeValue.textContent = fmt(S.sizeValue, { size: size.value });
    }

    /** Canvas pixels per CSS pixel of the mask as it is shown. */
    function canvasScale() {
      var rect = mask.getBoundingClientRect();
      return rect.width ? mask.width / rect.width : 1;
    }

    // --- the photo and its mask ---------------------------------------------------------------

    function workingSize(width, height) {
      var s = Math.min(1, workSide / Math.max(width, height));
      return [Math.max(1, Math.round(width * s)), Math.max(1, Math.round(height * s))];
    }

    function layout(width, height) {
      if (photo.width !== width || photo.height !== height) {
        // A new size clears both canvases; older undo steps no longer fit.
        photo.width = mask.width = width;
        photo.height = mask.height = height;
        state.undo = [];
        undoButton.disabled = true;
      }
      photoCtx.drawImage(state.image, 0, 0, width, height);
      // Tall photos fit the window: the width follows the height limit.
      wrap.style.maxWidth = "calc(70vh * " + (width / height).toFixed(5) + ")";
    }

    function snapshot() {
      state.undo.push(maskCtx.getImageData(0, 0, mask.width, mask.height));
      if (state.undo.length > UNDO_LIMIT) state.undo.shift();
      undoButton.disabled = false;
    }

    function undo() {
      if (!state.undo.length || state.busy) return;
      maskCtx.putImageData(state.undo.pop(), 0, 0);
      undoButton.disabled = state.undo.length === 0;
      say(S.undone);
    }

    function clearMask() {
      if (state.busy) return;
      snapshot();
      maskCtx.clearRect(0, 0, mask.width, mask.height);
      say(S.cleared);
    }

    /** Paint a black-and-white mask image (white = watermark) onto the mask as red. */
    function drawDetected(img) {
      var tmp = document.createElement("canvas");
      tmp.width = mask.width;
      tmp.height = mask.height;
      var t = tmp.getContext("2d", { willReadFrequently: true });
      t.imageSmoothingEnabled = false;
      t.drawImage(img, 0, 0, tmp.width, tmp.height);
      var data = t.getImageData(0, 0, tmp.width, tmp.height);
      var px = data.data;
      var marked = 0;
      for (var i = 0; i < px.length; i += 4) {
        if (px[i] > 127) {
          px[i] = RED[0];
          px[i + 1] = RED[1];
          px[i + 2] = RED[2];
          px[i + 3] = 255;
          marked += 1;
        } else {
          px[i + 3] = 0;
        }
      }
      maskCtx.putImageData(data, 0, 0);
      return marked;
    }

    function detect() {
      if (!state.file) return;
      var ticket = (state.detection += 1);
      var body = new FormData();
      body.append("file", state.file, state.file.name || "photo");
      say(S.detecting);
      showError("");
      detectButton.disabled = true;
      fetch("/api/v1/watermark/detect", {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { "X-CSRF-Token": csrfToken(), Accept: "image/png" },
      })
        .then(function (response) {
          if (!response.ok) {
            return response.text().then(function (text) {
              throw failure(response.status, text);
            });
          }
          return response.blob().then(function (blob) {
            return { blob: blob, headers: response.headers };
          });
        })
        .then(function (answer) {
          var h = answer.headers;
          var width = parseInt(h.get("X-Mask-Width"), 10);
          var height = parseInt(h.get("X-Mask-Height"), 10);
          state.imageWidth = parseInt(h.get("X-Image-Width"), 10) || state.imageWidth;
          state.imageHeight = parseInt(h.get("X-Image-Height"), 10) || state.imageHeight;
          showPhotoSize();
          var url = URL.createObjectURL(answer.blob);
          return loadImage(url).then(function (img) {
            URL.revokeObjectURL(url);
            if (ticket !== state.detection) return;
            if (width && height) layout(width, height);
            snapshot();
            var marked = drawDetected(img);
            say(marked ? S.found : S.notFound);
          });
        })
        .catch(function (err) {
          if (ticket !== state.detection) return;
          if (err instanceof TypeError) err = new Error(S.network);
          say(S.detectFailed);
          showError(err.message, err.status);
        })
        .then(function () {
          if (ticket === state.detection) detectButton.disabled = state.busy;
        });
    }

    function choose(file) {
      showError("");
      if (!file) return;
      if (!/^image\/(jpeg|png|webp)$/.test(file.type)) {
        showError(S.notImage);
        return;
      }
      if (maxBytes && file.size > maxBytes) {
        showError(S.tooLarge);
        return;
      }
      if (state.url) URL.revokeObjectURL(state.url);
      state.url = URL.createObjectURL(file);
      loadImage(state.url)
        .then(function (img) {
          state.file = file;
          state.image = img;
          state.undo = [];
          state.imageWidth = img.naturalWidth;
          state.imageHeight = img.naturalHeight;
          showPhotoSize();
          showPrice(img.naturalWidth * img.naturalHeight);
          var work = workingSize(img.naturalWidth, img.naturalHeight);
          pick.hidden = true;
          wrap.hidden = false;
          again.hidden = false;
          layout(work[0], work[1]);
          maskCtx.clearRect(0, 0, mask.width, mask.height);
          setControls(true);
          detect();
        })
        .catch(function (err) {
          showError(err.message);
        });
    }

    // The button names what this photo's removal costs: the result keeps the photo's size,
    // priced by it (jobs/pages.py: each price and up to how many pixels it holds).
    function showPrice(pixels) {
      var ranges = [];
      try {
        ranges = JSON.parse(root.getAttribute("data-prices") || "[]");
      } catch (e) {
        ranges = [];
      }
      for (var i = 0; i < ranges.length; i++) {
        if (ranges[i].upTo === null || pixels <= ranges[i].upTo) {
          submit.textContent = ranges[i].label;
          return;
        }
      }
    }

    // --- painting -------------------------------------------------------------------------------

    function point(event) {
      var rect = mask.getBoundingClientRect();
      var sx = rect.width ? mask.width / rect.width : 1;
      var sy = rect.height ? mask.height / rect.height : 1;
      return { x: (event.clientX - rect.left) * sx, y: (event.clientY - rect.top) * sy };
    }

    function brushWidth() {
      return Math.max(1, parseFloat(size.value) * canvasScale());
    }

    function paint(from, to) {
      maskCtx.save();
      maskCtx.globalCompositeOperation = tool() === "eraser" ? "destination-out" : "source-over";
      maskCtx.strokeStyle = maskCtx.fillStyle = "rgb(" + RED.join(",") + ")";
      maskCtx.lineWidth = brushWidth();
      maskCtx.lineCap = "round";
      maskCtx.lineJoin = "round";
      if (from.x === to.x && from.y === to.y) {
        maskCtx.beginPath();
        maskCtx.arc(to.x, to.y, maskCtx.lineWidth / 2, 0, Math.PI * 2);
        maskCtx.fill();
      } else {
        maskCtx.beginPath();
        maskCtx.moveTo(from.x, from.y);
        maskCtx.lineTo(to.x, to.y);
        maskCtx.stroke();
      }
      maskCtx.restore();
    }

    function moveCursor(event) {
      var wrapRect = wrap.getBoundingClientRect();
      var d = parseFloat(size.value);
      cursor.style.width = cursor.style.height = d + "px";
      cursor.style.transform =
        "translate(" +
        (event.clientX - wrapRect.left - d / 2) +
        "px, " +
        (event.clientY - wrapRect.top - d / 2) +
        "px)";
      cursor.hidden = event.pointerType === "touch";
    }

    mask.addEventListener("pointerdown", function (event) {
      if (state.busy || !state.image || event.button > 0) return;
      event.preventDefault();
      mask.setPointerCapture(event.pointerId);
      snapshot();
      var p = point(event);
      state.stroke = { id: event.pointerId, x: p.x, y: p.y };
      paint(p, p);
    });

    mask.addEventListener("pointermove", function (event) {
      moveCursor(event);
      var stroke = state.stroke;
      if (!stroke || stroke.id !== event.pointerId) return;
      var events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
      if (!events.length) events = [event];
      events.forEach(function (e) {
        var p = point(e);
        paint(stroke, p);
        stroke.x = p.x;
        stroke.y = p.y;
      });
    });

    function endStroke(event) {
      if (state.stroke && state.stroke.id === event.pointerId) state.stroke = null;
    }

    mask.addEventListener("pointerup", endStroke);
    mask.addEventListener("pointercancel", endStroke);
    mask.addEventListener("pointerleave", function () {
      cursor.hidden = true;
    });
    mask.addEventListener("pointerenter", function (event) {
      moveCursor(event);
    });

    // --- a box, for the keyboard ---------------------------------------------------------------

    function showPhotoSize() {
      boxSize.textContent = fmt(S.boxSize, { width: state.imageWidth, height: state.imageHeight });
      boxInputs[0].max = boxInputs[2].max = String(state.imageWidth);
      boxInputs[1].max = boxInputs[3].max = String(state.imageHeight);
    }

    /** Mark (brush) or unmark (eraser) the box typed in the photo's own pixels. */
    function applyBox() {
      if (state.busy || !state.image) return;
      var v = boxInputs.map(function (node) {
        return Number(node.value);
      });
      var whole = v.every(function (n) {
        return Number.isInteger(n) && n >= 0;
      });
      var inside = v[0] + v[2] <= state.imageWidth && v[1] + v[3] <= state.imageHeight;
      if (!whole || v[2] < 1 || v[3] < 1 || !inside) {
        showError(S.boxInvalid);
        return;
      }
      showError("");
      snapshot();
      var sx = mask.width / state.imageWidth;
      var sy = mask.height / state.imageHeight;
      var erase = tool() === "eraser";
      maskCtx.save();
      maskCtx.globalCompositeOperation = erase ? "destination-out" : "source-over";
      maskCtx.fillStyle = "rgb(" + RED.join(",") + ")";
      var x0 = Math.floor(v[0] * sx);
      var y0 = Math.floor(v[1] * sy);
      var x1 = Math.ceil((v[0] + v[2]) * sx);
      var y1 = Math.ceil((v[1] + v[3]) * sy);
      maskCtx.fillRect(x0, y0, x1 - x0, y1 - y0);
      maskCtx.restore();
      var where = { x: v[0], y: v[1], width: v[2], height: v[3] };
      say(fmt(erase ? S.boxUnmarked : S.boxMarked, where));
    }

    boxApply.addEventListener("click", applyBox);
    boxInputs.forEach(function (node) {
      node.addEventListener("keydown", function (event) {
        // Enter applies the box; it must not submit the form, which pays for the removal.
        if (event.key === "Enter") {
          event.preventDefault();
          applyBox();
        }
      });
    });

    // --- sending ------------------------------------------------------------------------------

    /** The mask at the photo's size, black and white, as a PNG blob; null when empty. */
    function maskBlob() {
      var src = maskCtx.getImageData(0, 0, mask.width, mask.height);
      var px = src.data;
      var marked = 0;
      for (var i = 0; i < px.length; i += 4) {
        var on = px[i + 3] > 127 ? 255 : 0;
        if (on) marked += 1;
        px[i] = px[i + 1] = px[i + 2] = on;
        px[i + 3] = 255;
      }
      if (!marked) return Promise.resolve(null);
      var small = document.createElement("canvas");
      small.width = mask.width;
      small.height = mask.height;
      small.getContext("2d").putImageData(src, 0, 0);
      var out = small;
      var width = state.imageWidth || mask.width;
      var height = state.imageHeight || mask.height;
      if (width !== mask.width || height !== mask.height) {
        out = document.createElement("canvas");
        out.width = width;
        out.height = height;
        var o = out.getContext("2d");
        o.imageSmoothingEnabled = false;
        o.drawImage(small, 0, 0, width, height);
      }
      return new Promise(function (resolve) {
        out.toBlob(resolve, "image/png");
      });
    }

    function setBusy(busy) {
      state.busy = busy;
      setControls(!busy);
      again.disabled = busy;
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (state.busy || !state.file) return;
      showError("");
      setBusy(true);
      maskBlob()
        .then(function (blob) {
          if (!blob) {
            var empty = new Error(S.empty);
            empty.status = 0;
            throw empty;
          }
          say(S.submitting);
          var body = new FormData();
          body.append("file", state.file, state.file.name || "photo");
          body.append("service", "remove_watermark");
          body.append("mask_file", blob, "mask.png");
          return fetch("/api/v1/jobs", {
            method: "POST",
            body: body,
            credentials: "same-origin",
            headers: { "X-CSRF-Token": csrfToken(), Accept: "application/json" },
          });
        })
        .then(function (response) {
          return response.text().then(function (text) {
            if (!response.ok) throw failure(response.status, text);
            var job = parseJSON(text);
            window.location.assign("/jobs/" + encodeURIComponent(job.id));
          });
        })
        .catch(function (err) {
          if (err instanceof TypeError) err = new Error(S.network);
          say("");
          showError(err.message, err.status);
          setBusy(false);
        });
    });

    // --- controls -----------------------------------------------------------------------------

    input.addEventListener("change", function () {
      choose(input.files && input.files[0]);
      input.value = "";
    });

    ["dragenter", "dragover"].forEach(function (kind) {
      pick.addEventListener(kind, function (event) {
        event.preventDefault();
        pick.classList.add("dragging");
      });
    });
    ["dragleave", "drop"].forEach(function (kind) {
      pick.addEventListener(kind, function () {
        pick.classList.remove("dragging");
      });
    });
    pick.addEventListener("drop", function (event) {
      event.preventDefault();
      var files = event.dataTransfer && event.dataTransfer.files;
      if (files && files.length) choose(files[0]);
    });

    tools.forEach(function (radio) {
      radio.addEventListener("change", function () {
        setTool(tool());
      });
    });
    size.addEventListener("input", showSize);
    undoButton.addEventListener("click", undo);
    clearButton.addEventListener("click", clearMask);
    detectButton.addEventListener("click", detect);
    show.addEventListener("change", function () {
      mask.classList.toggle("wm-hidden", !show.checked);
    });
    again.addEventListener("click", function () {
      state.detection += 1;
      state.file = state.image = null;
      state.undo = [];
      wrap.hidden = true;
      again.hidden = true;
      pick.hidden = false;
      setControls(false);
      say("");
      showError("");
      input.focus();
    });

    document.addEventListener("keydown", function (event) {
      if (!state.image || state.busy) return;
      var target = event.target;
      // Single keys act in the editor only (or with nothing focused, after a stroke on the
      // photo): on a link elsewhere, a stray key or speech input would change the tool unseen.
      if (target !== document.body && !root.contains(target)) return;
      var typing =
        target &&
        (target.tagName === "TEXTAREA" ||
          (target.tagName === "INPUT" && !/^(radio|checkbox|range)$/.test(target.type)));
      if (typing) return;
      var key = event.key;
      if ((event.ctrlKey || event.metaKey) && (key === "z" || key === "Z")) {
        event.preventDefault();
        undo();
      } else if (event.ctrlKey || event.metaKey || event.altKey) {
        return;
      } else if (key === "b" || key === "B") {
        setTool("brush");
      } else if (key === "e" || key === "E") {
        setTool("eraser");
      } else if (key === "[" || key === "]") {
        var step = parseFloat(size.step) || 2;
        var next = parseFloat(size.value) + (key === "]" ? step : -step);
        size.value = String(Math.min(parseFloat(size.max), Math.max(parseFloat(size.min), next)));
        showSize();
      }
    });

    showSize();
  }

  function start() {
    var root = byId("wm-editor");
    if (root) init(root);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
