/* Resumable uploads for the witness form: a small tus 1.0 client.
 *
 * With JavaScript on, each chosen file goes to /uploads/ in pieces (PATCH),
 * with a progress bar. When a connection breaks (a Tor circuit, a laptop
 * closed), it asks the server how much arrived (HEAD) and sends only the
 * rest, trying again for as long as the page stays open. When every file has
 * arrived, the form is sent as usual, naming the uploads instead of carrying
 * the files. Without JavaScript this file does nothing and the form sends
 * its files itself. Nothing is kept in the browser's storage.
 */
(function () {
  "use strict";

  var TUS = "1.0.0";
  var PIECE = 1024 * 1024; // bytes per PATCH: a piece lost to a break costs little
  var WAIT_MAX = 30000;

  function ask(method, url, headers, body, onProgress) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open(method, url);
      xhr.setRequestHeader("Tus-Resumable", TUS);
      // The server's refusals, shown below, in the page's language.
      xhr.setRequestHeader("Accept-Language", document.documentElement.lang || "en");
      Object.keys(headers).forEach(function (name) {
        xhr.setRequestHeader(name, headers[name]);
      });
      if (onProgress && xhr.upload) {
        xhr.upload.onprogress = function (ev) { onProgress(ev.loaded); };
      }
      xhr.onload = function () { resolve(xhr); };
      xhr.onerror = xhr.ontimeout = xhr.onabort = function () {
        reject(new Error("network"));
      };
      xhr.send(body === undefined ? null : body);
    });
  }

  function pause(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }

  function base64(text) {
    var bytes = new TextEncoder().encode(text);
    var out = "";
    for (var i = 0; i < bytes.length; i++) { out += String.fromCharCode(bytes[i]); }
    return btoa(out);
  }

  function Refused(xhr) {
    this.status = xhr.status;
    this.message = xhr.responseText || "";
  }

  // The server no longer has the upload (expired, removed): start it again.
  function forgotten(e) {
    return e instanceof Refused && (e.status === 404 || e.status === 410);
  }

  // A status that trying again may cure: the server or the path was busy.
  function passing(status) {
    return status === 0 || status === 408 || status === 409 || status === 423 ||
      status === 429 || status >= 500 && status !== 503 && status !== 507;
  }

  function Sender(form, files, box) {
    this.form = form;
    this.files = files;
    this.box = box;
    this.bar = box.querySelector("progress");
    this.status = box.querySelector(".status");
    this.total = files.reduce(function (n, f) { return n + f.size; }, 0) || 1;
    this.done = 0; // bytes the server confirmed, of files before the current one
    this.wait = 1000;
    this.token = form.querySelector("input[name=csrf_token]").value;
  }

  Sender.prototype.show = function (arrived) {
    var percent = Math.min(100, Math.floor(100 * arrived / this.total));
    this.bar.value = percent;
    this.status.textContent = this.box.dataset.progress.replace("{percent}", percent + "%");
  };

  Sender.prototype.lost = async function () {
    this.status.textContent = this.box.dataset.retry;
    await pause(this.wait);
    this.wait = Math.min(WAIT_MAX, this.wait * 2);
  };

  Sender.prototype.create = async function (file) {
    for (;;) {
      var xhr;
      try {
        xhr = await ask("POST", "/uploads/", {
          "Upload-Length": String(file.size),
          "Upload-Metadata": "filename " + base64(file.name),
          "X-CSRFToken": this.token
        });
      } catch (e) { await this.lost(); continue; }
      if (xhr.status === 201) { return xhr.getResponseHeader("Location"); }
      if (!passing(xhr.status)) { throw new Refused(xhr); }
      await this.lost();
    }
  };

  Sender.prototype.offset = async function (url) {
    for (;;) {
      var xhr;
      try { xhr = await ask("HEAD", url, {}); } catch (e) { await this.lost(); continue; }
      if (xhr.status === 200) { return Number(xhr.getResponseHeader("Upload-Offset")); }
      if (!passing(xhr.status)) { throw new Refused(xhr); }
      await this.lost();
    }
  };

  Sender.prototype.send = async function (file) {
    var url = await this.create(file);
    var offset = 0;
    var self = this;
    this.show(this.done);
    while (offset < file.size) {
      var xhr = null;
      try {
        xhr = await ask("PATCH", url, {
          "Upload-Offset": String(offset),
          "Content-Type": "application/offset+octet-stream"
        }, file.slice(offset, offset + PIECE), function (sent) {
          self.show(self.done + offset + sent);
        });
      } catch (e) { xhr = null; }
      if (xhr && xhr.status === 204) {
        offset = Number(xhr.getResponseHeader("Upload-Offset"));
        this.wait = 1000;
        this.show(this.done + offset);
        continue;
      }
      if (xhr && !passing(xhr.status)) { throw new Refused(xhr); }
      await this.lost();
      offset = await this.offset(url); // what arrived stays; only the rest goes again
      this.show(this.done + offset);
    }
    this.done += file.size;
    return url.slice(url.lastIndexOf("/") + 1);
  };

  Sender.prototype.run = async function (inputs) {
    var ids = [];
    this.box.hidden = false;
    try {
      for (var i = 0; i < this.files.length; i++) {
        for (var attempt = 0; ; attempt++) {
          var before = this.done;
          try {
            ids.push(await this.send(this.files[i]));
            break;
          } catch (e) {
            if (!forgotten(e) || attempt >= 2) { throw e; }
            this.done = before;
          }
        }
      }
    } catch (e) {
      this.status.textContent = this.box.dataset.failed + " " +
        (e instanceof Refused ? e.message : "");
      this.form.dataset.sending = "";
      return;
    }
    this.status.textContent = this.box.dataset.done;
    var form = this.form;
    inputs.forEach(function (input) { input.disabled = true; });
    ids.forEach(function (id) {
      var field = document.createElement("input");
      field.type = "hidden";
      field.name = "upload";
      field.value = id;
      form.appendChild(field);
    });
    form.dataset.sending = "sent";
    form.submit();
  };

  function watch(form) {
    var box = form.querySelector(".resumable");
    var inputs = Array.prototype.slice.call(
      form.querySelectorAll("input[type=file][name=files]"));
    if (!box || !inputs.length || !window.XMLHttpRequest || !window.TextEncoder) { return; }
    form.addEventListener("submit", function (ev) {
      var files = [];
      inputs.forEach(function (input) {
        Array.prototype.push.apply(files, Array.prototype.slice.call(input.files || []));
      });
      if (!files.length || form.dataset.sending === "sent") { return; } // sent as usual
      ev.preventDefault();
      if (form.dataset.sending === "busy") { return; }
      form.dataset.sending = "busy";
      new Sender(form, files, box).run(inputs);
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("form"), watch);
}());
