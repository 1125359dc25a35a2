// TokenIM web client: CSRF header on every htmx request, live updates from
// the server's event stream, Enter to send, file uploads with progress,
// retention countdowns. No inline scripts (the page's CSP forbids them).
(function () {
  "use strict";
  var csrf = document.querySelector('meta[name="csrf"]').content;
  document.body.addEventListener("htmx:configRequest", function (e) {
    e.detail.headers["X-CSRF-Token"] = csrf;
  });

  function currentConv() {
    var c = document.querySelector(".conversation");
    return c ? c.dataset.conv : "";
  }
  function scrollDown() {
    var m = document.getElementById("messages");
    if (m) m.scrollTop = m.scrollHeight;
  }
  // htmx queues one request per source element (the last one wins), so the
  // two refreshes need sources of their own: with a shared one (the body, by
  // default) the sidebar's refresh would drop a queued refresh of the
  // conversation. The sidebar's source is #sidebar, which outlives the
  // #convs it replaces (a request queued on a replaced element is dropped).
  function refresh(conv) {
    if (conv && conv === currentConv()) {
      htmx.ajax("GET", "/c/" + encodeURIComponent(conv) + "/messages", { source: "#messages", target: "#messages", swap: "innerHTML" });
    }
    if (document.getElementById("convs")) {
      htmx.ajax("GET", "/sidebar", { source: "#sidebar", target: "#convs", swap: "outerHTML" });
    }
  }

  if (document.getElementById("sidebar")) {
    var es = new EventSource("/events");
    es.addEventListener("message", function (e) { refresh(e.data); });
  }

  document.body.addEventListener("htmx:afterSwap", function (e) {
    if (e.detail.target && (e.detail.target.id === "messages" || e.detail.target.id === "main")) scrollDown();
  });
  document.body.addEventListener("htmx:afterRequest", function (e) {
    var f = e.detail.elt;
    if (f && f.id === "composer" && e.detail.successful && !e.detail.xhr.getResponseHeader("HX-Retarget")) {
      f.reset();
      var err = document.getElementById("composer-error");
      if (err) err.textContent = "";
    }
  });
  document.body.addEventListener("htmx:responseError", function (e) {
    var box = document.getElementById("composer-error") || document.getElementById("new-error");
    if (box) box.textContent = e.detail.xhr.responseText || ("error " + e.detail.xhr.status);
  });

  // Enter sends, Shift+Enter makes a new line.
  document.body.addEventListener("keydown", function (e) {
    if (e.target.id === "text" && e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      var f = document.getElementById("composer");
      if (f && e.target.value.trim() !== "") htmx.trigger(f, "submit");
    }
  });

  // File upload with a progress bar.
  document.body.addEventListener("change", function (e) {
    if (e.target.id !== "file" || !e.target.files.length) return;
    var file = e.target.files[0], conv = e.target.dataset.conv;
    var box = document.getElementById("upload"), bar = document.getElementById("upload-progress"),
        label = document.getElementById("upload-label"), err = document.getElementById("composer-error");
    box.hidden = false; bar.value = 0; label.textContent = "uploading " + file.name; err.textContent = "";
    var fd = new FormData(); fd.append("file", file);
    var xhr = new XMLHttpRequest();
    xhr.open("POST", "/c/" + encodeURIComponent(conv) + "/file");
    xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.upload.onprogress = function (p) {
      if (p.lengthComputable) {
        bar.value = Math.round(100 * p.loaded / p.total);
        if (p.loaded === p.total) label.textContent = "encrypting and storing " + file.name + "…";
      }
    };
    xhr.onload = function () {
      box.hidden = true; e.target.value = "";
      if (xhr.status === 200) {
        document.getElementById("messages").innerHTML = xhr.responseText;
        htmx.process(document.getElementById("messages"));
        scrollDown();
      } else {
        err.innerHTML = xhr.responseText;
      }
    };
    xhr.onerror = function () { box.hidden = true; err.textContent = "upload failed: is tokenim ui still running?"; };
    xhr.send(fd);
  });

  // Retention countdowns.
  setInterval(function () {
    document.querySelectorAll("[data-expires]").forEach(function (el) {
      var left = Math.round((Number(el.dataset.expires) - Date.now()) / 1000);
      if (left <= 0) { el.closest(".msg") && el.closest(".msg").remove(); return; }
      var h = Math.floor(left / 3600), m = Math.floor(left % 3600 / 60), s = left % 60;
      el.textContent = "deletes in " + (h ? h + "h" : "") + (h || m ? m + "m" : "") + s + "s";
    });
  }, 1000);
  scrollDown();
})();
