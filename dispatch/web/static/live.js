// Live pages. A region `data-live="<fragment URL>" data-live-events="<event stream URL>"` follows the
// server's event stream: when the tickets this person may see move, the fragment is fetched again and
// merged row by row. A row (an element with data-key) that holds the focus, typed text, a changed
// choice or an open <details>/<dialog> is left as it is until the person is done with it; every other
// row that changed is replaced, new rows are added, gone rows removed. Buttons and forms inside a
// region post with htmx (hx-swap="none"); their answer is merged the same way, the acting row spared.
// No timer asks the server anything: only the event stream does (it reconnects by itself and the
// server tells a page that was away what it missed).
(function () {
  "use strict";
  var regions = Array.prototype.slice.call(document.querySelectorAll("[data-live]"));
  var state = document.getElementById("live-state");
  window.dispatchLive = {opened: 0, messages: 0, fetches: 0, merges: 0, errors: 0};

  function busy(el) {
    var active = document.activeElement;
    if (active && active !== document.body && el.contains(active) &&
        (active.matches("input, textarea, select") || active.isContentEditable)) { return true; }
    var fields = el.querySelectorAll("input, textarea, select");
    for (var i = 0; i < fields.length; i++) {
      var f = fields[i];
      if (f.type === "hidden" || f.type === "submit" || f.type === "button") { continue; }
      if (f.type === "checkbox" || f.type === "radio") {
        if (f.checked !== f.defaultChecked) { return true; }
      } else if (f.tagName === "SELECT") {
        for (var j = 0; j < f.options.length; j++) {
          if (f.options[j].selected !== f.options[j].defaultSelected) { return true; }
        }
      } else if (f.value !== f.defaultValue) { return true; }
    }
    return !!el.querySelector("details[open], dialog[open]") || el.matches("details[open], dialog[open]");
  }

  function keyOf(el) { return el.getAttribute("data-key"); }

  // copy what was typed into `from` onto the same-named fields of `to` (a refused step keeps its text)
  function carry(from, to) {
    var typed = from.querySelectorAll("input[name], textarea[name], select[name]");
    for (var i = 0; i < typed.length; i++) {
      var f = typed[i];
      if (f.type === "hidden") { continue; }
      var twin = to.querySelector(f.tagName.toLowerCase() + '[name="' + f.name + '"]');
      if (!twin) { continue; }
      if (f.type === "checkbox" || f.type === "radio") { twin.checked = f.checked; } else { twin.value = f.value; }
    }
  }

  function merge(oldParent, newParent, spare) {
    var olds = {}, kids = oldParent.children, i;
    for (i = 0; i < kids.length; i++) { if (keyOf(kids[i])) { olds[keyOf(kids[i])] = kids[i]; } }
    var wanted = [], fresh = Array.prototype.slice.call(newParent.children);
    fresh.forEach(function (node) {
      var key = keyOf(node), old = key && olds[key];
      if (!old) { wanted.push(document.importNode(node, true)); return; }
      delete olds[key];
      if (old.isEqualNode(node)) { wanted.push(old); return; }
      if (old.hasAttribute("data-live-merge") && node.hasAttribute("data-live-merge")) {
        merge(old, node, spare);
        wanted.push(old);
        return;
      }
      var spared = spare && (old === spare || old.contains(spare));
      if (busy(old) && !spared) { old.classList.add("stale"); wanted.push(old); return; }
      var copy = document.importNode(node, true);
      if (spared && node.hasAttribute("data-refused")) { carry(old, copy); }
      wanted.push(copy);
    });
    // rows gone from the answer: kept while someone works in them (the next step will say why)
    Object.keys(olds).forEach(function (key) {
      var old = olds[key];
      if (busy(old) && !(spare && old.contains(spare))) { old.classList.add("stale", "gone"); }
    });
    var cursor = oldParent.firstElementChild;
    wanted.forEach(function (node) {
      if (node === cursor) { cursor = cursor.nextElementSibling; return; }
      if (node.classList && node.classList.contains("gone")) { return; }
      oldParent.insertBefore(node, cursor);
    });
    Array.prototype.slice.call(oldParent.children).forEach(function (node) {
      if (wanted.indexOf(node) < 0 && !node.classList.contains("gone")) { oldParent.removeChild(node); }
    });
  }

  function apply(region, html, spare) {
    var active = document.activeElement, start = null, end = null;
    try { start = active.selectionStart; end = active.selectionEnd; } catch (e) { /* not a text field */ }
    var fresh = document.createElement(region.tagName);
    fresh.innerHTML = html;
    merge(region, fresh, spare);
    if (window.htmx) { window.htmx.process(region); }
    // a row that had to move keeps its focus and caret
    if (active && active !== document.activeElement && active.isConnected) {
      active.focus();
      if (start !== null) { try { active.setSelectionRange(start, end); } catch (e) { /* not text */ } }
    }
    window.dispatchLive.merges++;
    region.dispatchEvent(new CustomEvent("live:merged", {bubbles: true}));
  }

  function refresh(region) {
    window.dispatchLive.fetches++;
    return fetch(region.getAttribute("data-live"), {credentials: "same-origin", headers: {"HX-Request": "true"}})
      .then(function (r) {
        if (r.status === 401 || r.redirected) { expired(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) { if (html !== null) { apply(region, html, null); } })
      .catch(function () { window.dispatchLive.errors++; });
  }

  function show(text, kind) {
    if (!state) { return; }
    state.textContent = text || "";
    state.hidden = !text;
    state.className = "live-state " + (kind || "");
  }
  function expired() { show("登录已过期，请重新登录", "down"); }

  regions.forEach(function (region) {
    region.addEventListener("htmx:afterRequest", function (ev) {
      var xhr = ev.detail.xhr;
      if (!xhr) { return; }
      if (xhr.status === 200 && xhr.responseText) {
        var row = ev.detail.elt.closest("[data-key]");
        apply(region, xhr.responseText, row || ev.detail.elt);
      } else if (xhr.status === 401) {
        expired();
      } else if (xhr.status >= 400) {  // refused at the door (a stale page, too many steps): its own words
        var said = "操作未能完成：请刷新页面后重试";
        try { said = JSON.parse(xhr.responseText).detail || said; } catch (e) { /* not a problem body */ }
        show(said, "down");
      }
    });
    var url = region.getAttribute("data-live-events");
    if (!url || !window.EventSource) { return; }
    var away = false, source = new EventSource(url);
    source.addEventListener("open", function () {
      window.dispatchLive.opened++;
      if (away) { show("", ""); refresh(region); }
      away = false;
    });
    source.addEventListener("changed", function () {
      window.dispatchLive.messages++;
      refresh(region);
    });
    source.addEventListener("error", function () {
      away = true;
      if (source.readyState === EventSource.CLOSED) {
        show("实时更新已停止：请刷新页面", "down");
      } else {
        show("连接中断，正在重连…", "down");
      }
    });
  });
})();
