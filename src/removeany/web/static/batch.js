/* RemoveAny batch pages: plain JavaScript, no build step, no third-party code.
 *
 * /batches: drag & drop onto the file field, a summary of the chosen files, an estimate of
 * their price and a warning when it exceeds the balance (a ZIP's images counted from its
 * central directory, read here without uploading it, as the server counts them). The form is sent with
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

  /* ---- Counting a ZIP's images without uploading it ---------------------------------------
   *
   * The server refuses a batch the balance cannot pay (402) from the ZIP's central directory
   * before it reads or stores a member (batches/service.py count_zip_images). The same count
   * is made here from the chosen file, read in the browser (File.slice: nothing is sent):
   * batches/zipdir.py's strict reading of the directory (end record, ZIP64, a prefix before
   * the archive, whole headers, as many as declared), zipfile's of each entry (the extra
   * field) and entries_from_zip's rules (folders, unsafe paths, __MACOSX and other
   * junk, hidden files and folders, links, encrypted and duplicate members, names without
   * the UTF-8 flag read as UTF-8, GBK or CP437), then an image suffix and the per-file size
   * limit. null when the server would not read the directory (it answers with an error of
   * its own then). */

  var SIG_END = 0x06054b50;
  var SIG_END64 = 0x06064b50;
  var SIG_LOCATOR64 = 0x07064b50;
  var SIG_CENTRAL = 0x02014b50;
  var END_SIZE = 22;
  var END64_SIZE = 56;
  var LOCATOR64_SIZE = 20;
  var CENTRAL_SIZE = 46;
  var SEARCHED = 65536 + END_SIZE; // zipfile's search window for the end record
  var MAX_EXTRACT_VERSION = 63;
  var IMAGE_SUFFIXES = [".png", ".jpg", ".jpeg", ".jfif", ".webp", ".gif", ".bmp", ".tif", ".tiff"];
  var JUNK_NAMES = [".DS_Store", "Thumbs.db", "desktop.ini"];
  // CP437's upper half, as Python decodes it.
  var CP437 =
    "\u00c7\u00fc\u00e9\u00e2\u00e4\u00e0\u00e5\u00e7\u00ea\u00eb\u00e8\u00ef\u00ee\u00ec\u00c4\u00c5" +
    "\u00c9\u00e6\u00c6\u00f4\u00f6\u00f2\u00fb\u00f9\u00ff\u00d6\u00dc\u00a2\u00a3\u00a5\u20a7\u0192" +
    "\u00e1\u00ed\u00f3\u00fa\u00f1\u00d1\u00aa\u00ba\u00bf\u2310\u00ac\u00bd\u00bc\u00a1\u00ab\u00bb" +
    "\u2591\u2592\u2593\u2502\u2524\u2561\u2562\u2556\u2555\u2563\u2551\u2557\u255d\u255c\u255b\u2510" +
    "\u2514\u2534\u252c\u251c\u2500\u253c\u255e\u255f\u255a\u2554\u2569\u2566\u2560\u2550\u256c\u2567" +
    "\u2568\u2564\u2565\u2559\u2558\u2552\u2553\u256b\u256a\u2518\u250c\u2588\u2584\u258c\u2590\u2580" +
    "\u03b1\u00df\u0393\u03c0\u03a3\u03c3\u00b5\u03c4\u03a6\u0398\u03a9\u03b4\u221e\u03c6\u03b5\u2229" +
    "\u2261\u00b1\u2265\u2264\u2320\u2321\u00f7\u2248\u00b0\u2219\u00b7\u221a\u207f\u00b2\u25a0\u00a0";
  // Two-byte GBK codes (both bytes above ASCII) that Python's gbk codec does not decode,
  // as inclusive ranges of lead * 256 + trail; the browser's GBK decoder takes them.
  var GBK_UNDEFINED = [
    0xa180, 0xa1a0, 0xa280, 0xa2a0, 0xa2ab, 0xa2b0, 0xa2e3, 0xa2e4, 0xa2ef, 0xa2f0, 0xa2fd,
    0xa2fe, 0xa380, 0xa3a0, 0xa480, 0xa4a0, 0xa4f4, 0xa4fe, 0xa580, 0xa5a0, 0xa5f7, 0xa5fe,
    0xa680, 0xa6a0, 0xa6b9, 0xa6c0, 0xa6d9, 0xa6df, 0xa6ec, 0xa6ed, 0xa6f3, 0xa6f3, 0xa6f6,
    0xa6fe, 0xa780, 0xa7a0, 0xa7c2, 0xa7d0, 0xa7f2, 0xa7fe, 0xa896, 0xa8a0, 0xa8bc, 0xa8bc,
    0xa8bf, 0xa8bf, 0xa8c1, 0xa8c4, 0xa8ea, 0xa8fe, 0xa989, 0xa995, 0xa997, 0xa9a3, 0xa9f0,
    0xa9fe, 0xaaa1, 0xaafe, 0xaba1, 0xabfe, 0xaca1, 0xacfe, 0xada1, 0xadfe, 0xaea1, 0xaefe,
    0xafa1, 0xaffe, 0xd7fa, 0xd7fe, 0xf8a1, 0xf8fe, 0xf9a1, 0xf9fe, 0xfaa1, 0xfafe, 0xfba1,
    0xfbfe, 0xfca1, 0xfcfe, 0xfda1, 0xfdfe, 0xfe80, 0xfefe,
  ];

  function NotRead() {}

  function bytesOf(file, start, end) {
    return file.slice(Math.max(0, start), Math.max(0, end)).arrayBuffer().then(function (buffer) {
      return new Uint8Array(buffer);
    });
  }

  function u16(b, at) {
    return b[at] | (b[at + 1] << 8);
  }

  function u32(b, at) {
    return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
  }

  function u64(b, at) {
    return u32(b, at + 4) * 4294967296 + u32(b, at);
  }

  // batches/zipdir.py find: the last end record in the file's final 64 KiB, whose comment
  // ends exactly at the end of the file, with no earlier record whose comment would too;
  // null when there is none or it is not so.
  function endRecord(file) {
    var size = file.size;
    if (size < END_SIZE) return Promise.resolve(null);
    var from = Math.max(size - SEARCHED, 0);
    return bytesOf(file, from, size).then(function (tail) {
      var at = lastSignature(tail, tail.length - 4);
      if (at < 0 || at + END_SIZE > tail.length) return null;
      if (at + END_SIZE + u16(tail, at + 20) !== tail.length) return null;
      for (var other = lastSignature(tail, at - 1); other >= 0; other = lastSignature(tail, other - 1)) {
        if (other + END_SIZE + u16(tail, other + 20) === tail.length) return null;
      }
      return zip64(file, {
        location: from + at,
        disk: u16(tail, at + 4),
        dirDisk: u16(tail, at + 6),
        here: u16(tail, at + 8),
        entries: u16(tail, at + 10),
        dirSize: u32(tail, at + 12),
        dirOffset: u32(tail, at + 16),
      });
    });
  }

  // The last end record signature starting at or before `from`; -1 when there is none.
  function lastSignature(b, from) {
    for (var i = from; i >= 0; i--) {
      if (u32(b, i) === SIG_END) return i;
    }
    return -1;
  }

  // batches/zipdir.py _zip64 and find: a ZIP64 locator right before the end record, its
  // record right before it (no extensible data, pointing at it, one disk), the end record's
  // fields either the same or all ones. {end, dirSize, dirOffset, entries} or null.
  function zip64(file, rec) {
    var plain = function () {
      if (rec.disk !== 0 || rec.dirDisk !== 0 || rec.here !== rec.entries) return null;
      return {
        end: rec.location,
        dirSize: rec.dirSize,
        dirOffset: rec.dirOffset,
        entries: rec.entries === 0xffff ? null : rec.entries,
      };
    };
    if (rec.location < LOCATOR64_SIZE) return Promise.resolve(plain());
    return bytesOf(file, rec.location - LOCATOR64_SIZE, rec.location).then(function (loc) {
      if (loc.length !== LOCATOR64_SIZE || u32(loc, 0) !== SIG_LOCATOR64) return plain();
      if (u32(loc, 4) !== 0 || u32(loc, 16) > 1) return null; // several disks
      var at = rec.location - LOCATOR64_SIZE - END64_SIZE;
      if (at < 0) return null;
      return bytesOf(file, at, at + END64_SIZE).then(function (r) {
        if (r.length !== END64_SIZE || u32(r, 0) !== SIG_END64 || u64(r, 4) !== END64_SIZE - 12) {
          return null;
        }
        if (u32(r, 16) !== 0 || u32(r, 20) !== 0 || u64(r, 24) !== u64(r, 32)) return null;
        var z = { entries: u64(r, 32), dirSize: u64(r, 40), dirOffset: u64(r, 48) };
        var pointed = u64(loc, 8);
        if (pointed !== at && pointed !== z.dirOffset + z.dirSize) return null;
        var few = Math.min(z.entries, 0xffff);
        var same = [
          [rec.disk, 0, 0xffff],
          [rec.dirDisk, 0, 0xffff],
          [rec.here, few, 0xffff],
          [rec.entries, few, 0xffff],
          [rec.dirSize, z.dirSize, 0xffffffff],
          [rec.dirOffset, z.dirOffset, 0xffffffff],
        ].every(function (f) {
          return f[0] === f[1] || f[0] === f[2];
        });
        if (!same) return null;
        return { end: at, dirSize: z.dirSize, dirOffset: z.dirOffset, entries: z.entries };
      });
    });
  }

  function decodeUtf8(bytes) {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  }

  function decodeCp437(bytes) {
    var out = "";
    for (var i = 0; i < bytes.length; i++) {
      out += bytes[i] < 128 ? String.fromCharCode(bytes[i]) : CP437[bytes[i] - 128];
    }
    return out;
  }

  function gbkUndefined(code) {
    for (var i = 0; i < GBK_UNDEFINED.length; i += 2) {
      if (code >= GBK_UNDEFINED[i] && code <= GBK_UNDEFINED[i + 1]) return true;
    }
    return false;
  }

  // batches/service.py member_name, for a name without the UTF-8 flag: UTF-8 if it is valid
  // UTF-8, else GBK if Python decodes it so with both bytes of every character above ASCII,
  // else CP437.
  function legacyName(bytes) {
    try {
      return decodeUtf8(bytes);
    } catch (e) {
      // not UTF-8
    }
    var i = 0;
    while (i < bytes.length) {
      if (bytes[i] < 0x80) {
        i += 1;
        continue;
      }
      var lead = bytes[i];
      var trail = i + 1 < bytes.length ? bytes[i + 1] : -1;
      if (lead < 0x81 || lead > 0xfe || trail < 0x80 || trail > 0xfe || gbkUndefined(lead * 256 + trail)) {
        return decodeCp437(bytes);
      }
      i += 2;
    }
    return new TextDecoder("gbk").decode(bytes);
  }

  // jobs/service.py visible_name: no control or invisible formatting characters, trimmed.
  // (Built at run time: a browser without Unicode property escapes then only cannot count.)
  var invisible = null;
  function visibleName(raw) {
    if (invisible === null) invisible = new RegExp("\\p{C}", "gu");
    return raw.replace(invisible, "").trim();
  }

  // batches/service.py safe_relative_path.
  function safePath(name) {
    if (Array.from(name).length > 1024) return null;
    name = name.replace(/\\/g, "/");
    if (name.charAt(0) === "/") return null;
    var parts = name
      .split("/")
      .map(visibleName)
      .filter(function (p) {
        return p !== "" && p !== ".";
      });
    if (!parts.length || parts.indexOf("..") >= 0 || parts[0].indexOf(":") >= 0) return null;
    return parts.join("/");
  }

  // batches/service.py looks_like_image: PurePosixPath(name.lower()).suffix.
  function looksLikeImage(path) {
    var name = path.toLowerCase().split("/").pop();
    var dot = name.lastIndexOf(".");
    return dot > 0 && dot < name.length - 1 && IMAGE_SUFFIXES.indexOf(name.slice(dot)) >= 0;
  }

  // Python's zipfile _RealGetContents and ZipInfo._decodeExtra, then entries_from_zip.
  function countDirectory(dir, limits) {
    var pos = 0;
    function take(n) {
      var part = dir.subarray(pos, Math.min(pos + n, dir.length));
      pos += part.length;
      return part;
    }
    var members = [];
    var total = 0;
    var size = limits.dirSize;
    var most = 2 * limits.maxItems + 1000;
    while (total < size) {
      // batches/zipdir.py count_entries: whole headers, within the directory, up to the
      // limit (past it the server answers 413).
      if (members.length > most) throw new NotRead();
      var head = take(CENTRAL_SIZE);
      if (head.length !== CENTRAL_SIZE || u32(head, 0) !== SIG_CENTRAL) throw new NotRead();
      var entryLength = CENTRAL_SIZE + u16(head, 28) + u16(head, 30) + u16(head, 32);
      if (total + entryLength > size) throw new NotRead();
      var flags = u16(head, 8);
      var nameLength = u16(head, 28);
      var extraLength = u16(head, 30);
      var commentLength = u16(head, 32);
      var raw = take(nameLength);
      var extra = take(extraLength);
      take(commentLength);
      if (head[6] > MAX_EXTRACT_VERSION) throw new NotRead();
      var member = {
        flags: flags,
        raw: raw,
        utf8: (flags & 0x800) !== 0,
        compressed: u32(head, 20),
        fileSize: u32(head, 24),
        offset: u32(head, 42),
        mode: u32(head, 38) >>> 16,
      };
      try {
        member.filename = member.utf8 ? decodeUtf8(raw) : decodeCp437(raw);
      } catch (e) {
        throw new NotRead(); // a name flagged UTF-8 that is not
      }
      var nul = member.filename.indexOf("\u0000");
      if (nul >= 0) member.filename = member.filename.slice(0, nul);
      decodeExtra(member, extra);
      members.push(member);
      total += CENTRAL_SIZE + nameLength + extraLength + commentLength;
    }
    if (members.length > most) throw new NotRead(); // 413 there
    if (limits.entries !== null && limits.entries !== members.length) throw new NotRead();
    var seen = new Set();
    var images = 0;
    members.forEach(function (m) {
      if (!m.filename.length) throw new NotRead(); // the server cannot read such a name
      if (m.filename.charAt(m.filename.length - 1) === "/") return; // a folder
      var name = m.filename;
      if (!m.utf8 && !/^[\x00-\x7f]*$/.test(name)) {
        var cut = Array.prototype.indexOf.call(m.raw, 0);
        name = legacyName(cut >= 0 ? m.raw.subarray(0, cut) : m.raw);
      }
      var path = safePath(name);
      if (path === null) return;
      var parts = path.split("/");
      var last = parts[parts.length - 1];
      if (parts[0] === "__MACOSX" || JUNK_NAMES.indexOf(last) >= 0 || last.indexOf("._") === 0) return;
      if (parts.some(function (p) { return p.charAt(0) === "."; })) return;
      if ((m.mode & 0xf000) === 0xa000) return; // a link
      if (m.flags & 0x1) return; // encrypted
      if (seen.has(path)) return;
      seen.add(path);
      if (looksLikeImage(path) && m.fileSize <= limits.maxBytes) images += 1;
    });
    return images;
  }

  function decodeExtra(member, extra) {
    var at = 0;
    while (extra.length - at >= 4) {
      var type = u16(extra, at);
      var length = u16(extra, at + 2);
      if (length + 4 > extra.length - at) throw new NotRead();
      if (type === 0x0001) {
        var data = extra.subarray(at + 4, at + 4 + length);
        var used = 0;
        var next = function () {
          if (data.length - used < 8) throw new NotRead();
          used += 8;
          return u64(data, used - 8);
        };
        if (member.fileSize === 0xffffffff || member.fileSize === 18446744073709551615) {
          member.fileSize = next();
        }
        if (member.compressed === 0xffffffff) member.compressed = next();
        if (member.offset === 0xffffffff) member.offset = next();
      }
      at += length + 4;
    }
  }

  /* The images of a ZIP the server counts before it stores anything (a Promise of a number,
   * or of null where the server would refuse the archive itself). */
  function countZipImages(file, maxBytes, maxItems) {
    return Promise.resolve(file)
      .then(endRecord)
      .then(function (end) {
        if (end === null) return null;
        // The directory ends where the records begin; a prefix (a self-extractor) may be
        // before the archive, not a directory reaching before the file.
        if (end.end - end.dirSize - end.dirOffset < 0) return null;
        var start = end.end - end.dirSize;
        return bytesOf(file, start, start + end.dirSize).then(function (dir) {
          return countDirectory(dir, {
            dirSize: end.dirSize,
            entries: end.entries,
            maxBytes: maxBytes,
            maxItems: maxItems,
          });
        });
      })
      .catch(function (err) {
        // A file changed or removed since it was chosen cannot be read either, and a browser
        // without Unicode property escapes cannot read the names.
        if (err instanceof NotRead || err instanceof DOMException || err instanceof SyntaxError) {
          return null;
        }
        throw err;
      });
  }

  window.RemoveAny.countZipImages = countZipImages;

  /* ---- The upload form ------------------------------------------------------------------- */

  // batches/pages.py _is_zip: a file is the archive when its first bytes are a ZIP's.
  function isZip(file) {
    return bytesOf(file, 0, 4).then(function (b) {
      return b.length === 4 && b[0] === 0x50 && b[1] === 0x4b &&
        ((b[2] === 3 && b[3] === 4) || (b[2] === 5 && b[3] === 6));
    });
  }

  /* The images of a choice as the server counts them before it stores anything
   * (batches/submit.py check_credits): loose files by their names, a ZIP's members from its
   * central directory. `unknown` when a ZIP's count cannot be told here (several ZIPs, or one
   * the server would refuse to read). */
  function countChoice(files, maxBytes, maxItems) {
    return Promise.resolve()
      .then(function () {
        return Promise.all(files.map(isZip));
      })
      .then(function (zips) {
        var archives = files.filter(function (f, i) {
          return zips[i];
        });
        var images = files.filter(function (f, i) {
          return !zips[i] && looksLikeImage(f.name);
        }).length;
        if (archives.length !== 1) return { images: images, unknown: archives.length > 1 };
        return countZipImages(archives[0], maxBytes, maxItems).then(function (n) {
          return n === null ? { images: images, unknown: true } : { images: images + n, unknown: false };
        });
      });
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
    var errorAction = byId("batch-error-action");
    var upload = byId("batch-upload");
    var bar = byId("batch-upload-progress");
    var cancelUpload = byId("batch-upload-cancel");
    var balance = Number(form.getAttribute("data-balance"));
    var maxBytes = Number(form.getAttribute("data-max-bytes"));
    var maxItems = Number(form.getAttribute("data-max-items"));
    // The chosen files' images as the server counts them, once read (recount()).
    var counted = null;
    var choice = 0;
    var request = null;
    var prices = {};
    try {
      prices = JSON.parse(form.getAttribute("data-prices") || "{}");
    } catch (e) {
      prices = {};
    }

    var service = byId("batch-service");

    // The chosen service's prices per size (batches/pages.py _prices: the least and the most
    // an image can cost by its result's size, the hint and the menu's label); an ID photo has
    // one price whatever the size field says.
    function table() {
      return prices[service ? service.value : "remove_background"] || prices.remove_background || {};
    }

    function price() {
      var found = table();
      return found[size.value] || found.full || { low: 1, high: 1, hint: "" };
    }

    // Show only the fields of the chosen service (without this script every field shows and
    // the server uses the ones that apply), and the sizes at that service's prices.
    function showServiceFields() {
      if (!service) return;
      Array.prototype.forEach.call(form.querySelectorAll("[data-services]"), function (el) {
        el.hidden = el.getAttribute("data-services").split(" ").indexOf(service.value) < 0;
      });
      var found = table();
      Array.prototype.forEach.call(size.options, function (option) {
        if (found[option.value]) setText(option, found[option.value].option);
      });
      describe();
    }

    function describe() {
      var files = Array.prototype.slice.call(input.files || []);
      var chosenPrice = price();
      var n = chosenPrice.low;
      var most = chosenPrice.high;
      if (priceHint && chosenPrice.hint) setText(priceHint, chosenPrice.hint);
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
      if (counted === null) {
        setText(estimate, "");
        return;
      }
      var images = counted.images;
      var text = "";
      if (images && most !== n) {
        // The price depends on each result's size: the least and the most they can cost.
        var range = { low: images * n, high: images * most, count: images };
        text = fmt(images === 1 ? S.estimateRangeOne : S.estimateRange, range);
      } else if (images === 1) text = n === 1 ? S.estimateOneOne : fmt(S.estimateOne, { credits: n });
      else if (images) text = fmt(S.estimate, { credits: images * n, count: images });
      if (counted.unknown) text = (text ? text + " " : "") + S.estimateZip;
      setText(estimate, text);
      // A warning only: the server prices each image by its size and says the last word.
      if (images * n > balance) {
        setText(short, fmt(S.short, { credits: images * n, balance: balance }));
        short.hidden = false;
      }
    }

    // Count the chosen files' images (a ZIP's are read here, not sent), then describe them.
    function recount() {
      var mine = ++choice;
      counted = null;
      describe();
      var files = Array.prototype.slice.call(input.files || []);
      if (!files.length) return;
      countChoice(files, maxBytes, maxItems)
        .catch(function () {
          // A browser that cannot read files here: loose images by name, ZIPs on upload.
          var zips = files.filter(function (f) {
            return /\.zip$/i.test(f.name) || /zip/.test(f.type || "");
          });
          var images = files.filter(function (f) {
            return zips.indexOf(f) < 0 && looksLikeImage(f.name);
          });
          return { images: images.length, unknown: zips.length > 0 };
        })
        .then(function (result) {
          if (mine !== choice) return; // another choice was made meanwhile
          counted = result;
          describe();
        });
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
        recount();
      }
    });
    window.addEventListener("dragover", function (event) {
      if (hasFiles(event)) event.preventDefault();
    });
    window.addEventListener("drop", function (event) {
      if (hasFiles(event)) event.preventDefault();
    });

    input.addEventListener("change", recount);
    size.addEventListener("change", describe);
    if (service) service.addEventListener("change", showServiceFields);
    showServiceFields();
    if (colour) {
      colour.addEventListener("input", function () {
        var radio = form.querySelector('input[name="bg"][value="color"]');
        if (radio) radio.checked = true;
      });
    }
    /* The refusal's sentence, and where the server's page offers one, the page that resolves
     * it (accepting new terms, buying credits) as a link under it; `action` is that page's
     * link element, read from the server's answer. */
    function showError(message, action) {
      error.hidden = false;
      setText(error, message);
      var link = action && action.querySelector("a[href]");
      if (errorAction) {
        errorAction.textContent = "";
        if (link) errorAction.appendChild(document.importNode(link, true));
        errorAction.hidden = !link;
      }
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
        var action = page && page.getElementById("batch-error-action");
        showError(message || S.uploadFailed, action && !action.hasAttribute("hidden") ? action : null);
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
      if (errorAction) errorAction.hidden = true;
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
    recount();
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
      var reason = window.RemoveAny.localizedError(S, item.error_code, item.error_message);
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
