/* RemoveAny batch pages: plain JavaScript, no build step, no third-party code.
 *
 * /batches: drag & drop onto the file field, a summary of the chosen files, an estimate of
 * their price and a warning when it exceeds the balance. The form is sent with
 * XMLHttpRequest to show the upload's progress and let it be cancelled; the server's answer
 * is the same as for the plain form (which works without this script): the batch's page, or
 * this page with the error, whose sentence is shown here.
 * /batches/{id}: follows the batch with the API's server-sent events
 * (GET /api/v1/batches/{id}/events: the counts, and the items whose status changed) and
 * updates the progress bar, the counts and the rows of the page's files; if the stream
 * fails it polls GET /api/v1/batches/{id} and the page's files from /items instead.
 * Visible text comes from the server (t()) in #batch-strings.
 */
(function () {
  "use strict";

  // Helpers from app.js, which every page loads first.
  var fmt = window.RemoveAny.fmt;
  var byId = window.RemoveAny.byId;
  var S = window.RemoveAny.readStrings("batch-strings");
  var FINISHED = { completed: true, cancelled: true };
  var POLL_MS = 1500;

  function getJSON(url) {
    return fetch(url, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      cache: "no-store",
    }).then(function (response) {
      if (!response.ok) {
        var err = new Error("HTTP " + response.status);
        err.status = response.status;
        throw err;
      }
      return response.json();
    });
  }

  function setText(node, text) {
    if (node && node.textContent !== text) node.textContent = text;
  }

  /* ---- The upload form ------------------------------------------------------------------- */

  function isZip(file) {
    return /\.zip$/i.test(file.name) || /zip/.test(file.type || "");
  }

  function initForm(form) {
    var input = byId("batch-files");
    var zone = byId("batch-dropzone");
    var chosen = byId("batch-chosen");
    var estimate = byId("batch-estimate");
    var size = byId("batch-size");
    var priceHint = byId("batch-price");
    var colour = byId("batch-bg-color");
    var submit = byId("batch-submit");
    var uploading = byId("batch-uploading");
    var short = byId("batch-short");
    var error = byId("batch-error");
    var upload = byId("batch-upload");
    var bar = byId("batch-upload-progress");
    var cancelUpload = byId("batch-upload-cancel");
    var balance = Number(form.getAttribute("data-balance"));
    var request = null;
    var prices = {};
    try {
      prices = JSON.parse(form.getAttribute("data-prices") || "{}");
    } catch (e) {
      prices = {};
    }

    var service = byId("batch-service");

    // Prices per service and size; an ID photo has one price whatever the size field says.
    function price() {
      var table = prices[service ? service.value : "remove_background"] || {};
      var value = table[size.value];
      if (typeof value !== "number") value = table.full;
      return typeof value === "number" ? value : 1;
    }

    // Show only the fields of the chosen service (without this script every field shows and
    // the server uses the ones that apply).
    function showServiceFields() {
      if (!service) return;
      Array.prototype.forEach.call(form.querySelectorAll("[data-services]"), function (el) {
        el.hidden = el.getAttribute("data-services").split(" ").indexOf(service.value) < 0;
      });
      describe();
    }

    function describe() {
      var files = Array.prototype.slice.call(input.files || []);
      var n = price();
      if (priceHint && S.priceOne) setText(priceHint, n === 1 ? S.priceOne : fmt(S.priceMany, { n: n }));
      short.hidden = true;
      if (!files.length) {
        setText(chosen, "");
        setText(estimate, "");
        return;
      }
      var bytes = files.reduce(function (sum, f) {
        return sum + f.size;
      }, 0);
      var mb = (bytes / 1048576).toFixed(1);
      setText(
        chosen,
        files.length === 1 ? fmt(S.chosenOne, { mb: mb }) : fmt(S.chosen, { count: files.length, mb: mb })
      );
      var images = files.filter(function (f) {
        return !isZip(f);
      }).length;
      var text = images ? fmt(S.estimate, { credits: images * n, count: images }) : "";
      if (images < files.length) text = (text ? text + " " : "") + S.estimateZip;
      setText(estimate, text);
      // A warning only: the server prices each image by its size and says the last word.
      if (images * n > balance) {
        setText(short, fmt(S.short, { credits: images * n, balance: balance }));
        short.hidden = false;
      }
    }

    function hasFiles(event) {
      var types = event.dataTransfer && event.dataTransfer.types;
      return !!types && Array.prototype.indexOf.call(types, "Files") !== -1;
    }

    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) {
        if (!hasFiles(event)) return;
        event.preventDefault();
        event.dataTransfer.dropEffect = "copy";
        zone.classList.add("dragging");
      });
    });
    zone.addEventListener("dragleave", function (event) {
      if (!zone.contains(event.relatedTarget)) zone.classList.remove("dragging");
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      zone.classList.remove("dragging");
      if (event.dataTransfer && event.dataTransfer.files.length) {
        input.files = event.dataTransfer.files;
        describe();
      }
    });
    window.addEventListener("dragover", function (event) {
      if (hasFiles(event)) event.preventDefault();
    });
    window.addEventListener("drop", function (event) {
      if (hasFiles(event)) event.preventDefault();
    });

    input.addEventListener("change", describe);
    size.addEventListener("change", describe);
    if (service) service.addEventListener("change", showServiceFields);
    showServiceFields();
    if (colour) {
      colour.addEventListener("input", function () {
        var radio = form.querySelector('input[name="bg"][value="color"]');
        if (radio) radio.checked = true;
      });
    }
    function showError(message) {
      error.hidden = false;
      setText(error, message);
      error.scrollIntoView({ block: "nearest" });
    }

    function uploadDone() {
      request = null;
      submit.disabled = false;
      upload.hidden = true;
    }

    function megabytes(bytes) {
      return (bytes / 1048576).toFixed(1);
    }

    /* The form sent by script: progress, cancel, and the server's answer read as the plain
     * form's would be (a redirect to the batch, or this page with its error). */
    function send() {
      var xhr = new XMLHttpRequest();
      request = xhr;
      xhr.open("POST", form.action);
      xhr.responseType = "document";
      xhr.upload.addEventListener("progress", function (event) {
        if (!event.lengthComputable) return;
        var pct = Math.floor((event.loaded / event.total) * 100);
        bar.value = pct;
        bar.textContent = pct + "%";
        setText(
          uploading,
          fmt(S.uploadProgress, { pct: pct, sent: megabytes(event.loaded), total: megabytes(event.total) })
        );
      });
      xhr.addEventListener("load", function () {
        var page = xhr.response;
        var refused = page && page.getElementById("batch-error");
        var message = refused && !refused.hasAttribute("hidden") ? refused.textContent.trim() : "";
        if (xhr.status < 400 && xhr.responseURL && !message) {
          window.location.assign(xhr.responseURL);
          return;
        }
        uploadDone();
        uploading.hidden = true;
        showError(message || S.uploadFailed);
      });
      xhr.addEventListener("error", function () {
        uploadDone();
        uploading.hidden = true;
        showError(S.uploadFailed);
      });
      xhr.addEventListener("abort", function () {
        uploadDone();
        setText(uploading, S.uploadCancelled);
      });
      bar.value = 0;
      bar.textContent = "0%";
      upload.hidden = false;
      submit.disabled = true;
      error.hidden = true;
      setText(uploading, S.uploading);
      uploading.hidden = false;
      xhr.send(new FormData(form));
    }

    cancelUpload.addEventListener("click", function () {
      if (request) request.abort();
    });

    form.addEventListener("submit", function (event) {
      if (request) {
        event.preventDefault();
        return;
      }
      if (window.XMLHttpRequest && window.FormData) {
        event.preventDefault();
        send();
        return;
      }
      // The browser posts the form; say what is happening while a large upload goes.
      window.setTimeout(function () {
        submit.disabled = true;
      }, 0);
      setText(uploading, S.uploading);
      uploading.hidden = false;
    });
    describe();
  }

  /* ---- One batch: live progress ------------------------------------------------------------ */

  /* The time left as the server says it (batches/pages.py _eta_text). */
  function etaText(seconds) {
    if (seconds === null || seconds === undefined) return "";
    if (seconds < 60) return S.etaSoon;
    var minutes = Math.round(seconds / 60);
    if (minutes < 90) return minutes === 1 ? S.etaMinute : fmt(S.etaMinutes, { n: minutes });
    return fmt(S.etaHours, { n: Math.round(seconds / 3600) });
  }

  function initBatch(root) {
    var bar = byId("batch-progress");
    var text = byId("batch-progress-text");
    var eta = byId("batch-eta");
    var badge = byId("batch-status");
    var download = byId("batch-download");
    var cancel = byId("batch-cancel");
    var live = byId("batch-live");
    var tbody = byId("batch-items");
    var source = null;
    var timer = null;
    var done = false;

    function updateItem(item) {
      // Only the files of this page have rows; the counts cover the others.
      var row = tbody.querySelector('tr[data-job-id="' + item.job_id + '"]');
      if (!row) return;
      row.setAttribute("data-status", item.status);
      var status = row.querySelector("[data-item-status]");
      status.className = "badge badge-" + item.status;
      setText(status, (S.items && S.items[item.status]) || item.status);
      // Why it failed: in the page's language where the code has a sentence (the API's
      // message is English).
      var reason = (S.errors && S.errors[item.error_code]) || item.error_message;
      var note = "";
      if (item.status === "failed") {
        note = (reason || S.unprocessable) + " " + S.refunded;
      } else if (item.status === "cancelled") {
        note = reason || "";
      }
      setText(row.querySelector("[data-item-note]"), note);
      setText(row.querySelector("[data-item-charged]"), String(item.charged));
      var result = row.querySelector("[data-item-result]");
      if (item.result_url && !result.querySelector("a")) {
        var link = document.createElement("a");
        link.href = item.result_url;
        link.setAttribute("download", String(item.result_path || "").split("/").pop());
        link.textContent = S.download;
        var hidden = document.createElement("span");
        hidden.className = "visually-hidden";
        hidden.textContent = " " + (item.result_path || "");
        link.appendChild(hidden);
        result.appendChild(link);
      }
    }

    function updateBatch(batch) {
      var pct = batch.total ? Math.round((batch.finished / batch.total) * 100) : 100;
      bar.max = batch.total || 1;
      bar.value = batch.total ? batch.finished : 1;
      bar.textContent = pct + "%";
      setText(text, fmt(S.progress, { finished: batch.finished, total: batch.total, pct: pct }));
      setText(eta, etaText(batch.eta_seconds));
      eta.hidden = batch.eta_seconds === null || batch.eta_seconds === undefined;
      root.setAttribute("data-status", batch.status);
      badge.className = "badge badge-" + batch.status;
      setText(badge, (S.batch && S.batch[batch.status]) || batch.status);
      ["succeeded", "failed", "cancelled"].forEach(function (key) {
        setText(root.querySelector('[data-count="' + key + '"]'), String(batch.counts[key]));
      });
      setText(byId("batch-failed-count"), String(batch.counts.failed));
      setText(root.querySelector('[data-count="charged"]'), String(batch.charged));
      cancel.hidden = batch.status !== "running";
      if (FINISHED[batch.status]) finish(batch);
    }

    function finish(batch) {
      if (done) return;
      done = true;
      if (source) source.close();
      clearTimeout(timer);
      download.hidden = !batch.counts.succeeded;
      live.hidden = true;
      refreshBalance();
      // One last read of the page's files, so no row keeps a state from before the end.
      getJSON(root.getAttribute("data-items-url")).then(function (items) {
        items.forEach(updateItem);
        root.setAttribute("data-finished", "true");
      }, function () {});
    }

    function poll() {
      var id = root.getAttribute("data-batch-id");
      root.setAttribute("data-live", "poll");
      Promise.all([
        getJSON(root.getAttribute("data-batch-url")),
        getJSON(root.getAttribute("data-items-url")),
      ]).then(
        function (answers) {
          answers[1].forEach(updateItem);
          updateBatch(answers[0]);
          if (!done) timer = setTimeout(poll, POLL_MS);
        },
        function (err) {
          if (err.status === 404 || err.status === 401) return;
          if (!done && id) timer = setTimeout(poll, POLL_MS * 2);
        }
      );
    }

    function fallBack() {
      if (source) source.close();
      source = null;
      if (done) return;
      setText(live, S.polling);
      poll();
    }

    function listen() {
      if (!window.EventSource) return poll();
      source = new EventSource(root.getAttribute("data-events-url"));
      function read(handler) {
        return function (event) {
          var data;
          try {
            data = JSON.parse(event.data);
          } catch (e) {
            return;
          }
          root.setAttribute("data-live", "sse");
          handler(data);
        };
      }
      source.addEventListener("item", read(updateItem));
      source.addEventListener("progress", read(updateBatch));
      source.addEventListener("done", read(updateBatch));
      source.addEventListener("error", function () {
        // The stream ends after "done"; any other error means it cannot be followed.
        if (!done) fallBack();
      });
    }

    if (!FINISHED[root.getAttribute("data-status")]) listen();
  }

  function refreshBalance() {
    getJSON("/api/v1/credits").then(
      function (credits) {
        window.RemoveAny.showBalance(credits.available);
      },
      function () {}
    );
  }

  function init() {
    var form = byId("batch-form");
    if (form) initForm(form);
    var root = byId("batch");
    if (root && root.getAttribute("data-batch-id")) initBatch(root);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
