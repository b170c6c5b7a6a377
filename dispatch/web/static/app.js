// Tick the deadlines down on the page: the server computed each "time left" in its SLA time basis;
// this only counts calendar minutes down until the next pushed update replaces the row. It asks the
// server nothing (updates come only by the event stream: live.js).
(function () {
  function words(minutes) {
    var late = minutes < 0, m = Math.abs(Math.round(minutes)), h = Math.floor(m / 60);
    var text = h ? h + "小时" + (m % 60) + "分" : m + "分钟";
    return late ? "超时 " + text : "剩余 " + text;
  }
  setInterval(function () {
    document.querySelectorAll(".left[data-minutes]").forEach(function (el) {
      var value = parseFloat(el.getAttribute("data-minutes"));
      if (isNaN(value)) { return; }
      value -= 0.5;
      el.setAttribute("data-minutes", String(value));
      el.textContent = words(value);
    });
  }, 30000);
})();

// The field report: the phone's position (needs HTTPS, or this machine) fills lat/lon; the server
// places it in its grid.
(function () {
  var button = document.getElementById("locate");
  if (!button || !navigator.geolocation) { return; }
  button.addEventListener("click", function () {
    var shown = document.getElementById("located");
    shown.textContent = "定位中…";
    navigator.geolocation.getCurrentPosition(function (p) {
      document.getElementById("lat").value = p.coords.latitude.toFixed(6);
      document.getElementById("lon").value = p.coords.longitude.toFixed(6);
      document.getElementById("accuracy").value = String(Math.round(p.coords.accuracy));
      shown.textContent = "已定位（±" + Math.round(p.coords.accuracy) + " 米）";
    }, function () { shown.textContent = "无法定位：请选择网格"; }, {enableHighAccuracy: true, timeout: 15000});
  });
})();

// The field report: a photo over the limit is refused here, before it travels over a phone's line.
(function () {
  var photo = document.getElementById("photo"), shown = document.getElementById("photo-error");
  if (!photo || !shown) { return; }
  photo.addEventListener("change", function () {
    var limit = parseInt(photo.getAttribute("data-max-bytes"), 10), file = photo.files && photo.files[0];
    if (file && limit && file.size > limit) {
      shown.textContent = "照片太大（" + (file.size / 1048576).toFixed(1) + " MB，最大 " + Math.floor(limit / 1048576) +
        " MB）：请换一张较小的照片";
      shown.hidden = false;
      photo.value = "";
    } else {
      shown.hidden = true;
    }
  });
})();

// The whistle form: the lead department is never offered as a cooperating one.
document.addEventListener("change", function (ev) {
  var select = ev.target;
  if (!select.matches || !select.matches(".whistle select[name=lead]")) { return; }
  select.form.querySelectorAll("input[name=cooperating]").forEach(function (box) {
    var lead = box.value === select.value;
    box.disabled = lead;
    if (lead) { box.checked = false; }
    box.closest("label").hidden = lead;
  });
});

// The desk: a badge, a short tone and a system notification (the Notifications API, once the
// person has allowed it) when a new call arrives (pushed: live.js merges it in).
(function () {
  var calls = document.getElementById("calls");
  if (!calls) { return; }
  var title = document.title;
  function waiting() { return calls.querySelectorAll("article.call[data-state=waiting]").length; }
  function keys() {
    var found = {};
    calls.querySelectorAll("article.call[data-state=waiting]").forEach(function (a) { found[a.dataset.key] = a; });
    return found;
  }
  var seen = waiting(), known = keys();
  var ask = document.getElementById("notify-permission");
  if (ask && "Notification" in window && Notification.permission === "default") {
    ask.hidden = false;  // a browser asks only after a click
    ask.addEventListener("click", function () {
      Notification.requestPermission().then(function () { ask.hidden = true; });
    });
  }
  function tell(article) {
    if (!("Notification" in window) || Notification.permission !== "granted") { return; }
    var caseNo = article.querySelector(".case"), what = article.querySelector("h2 a"),
        due = article.querySelector(".due");
    try {
      var shown = new Notification("新派单 " + (caseNo ? caseNo.textContent : ""), {
        body: (what ? what.textContent : "") + (due ? "\n" + due.textContent.replace(/\s+/g, " ").trim() : ""),
        tag: "dispatch-" + article.dataset.key, lang: "zh-CN"});
      shown.onclick = function () { window.focus(); article.scrollIntoView({block: "center"}); shown.close(); };
    } catch (e) { /* a browser that allows no notification from a page: the badge and tone remain */ }
  }
  function tone() {
    try {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      var ctx = new Ctx(), osc = ctx.createOscillator(), gain = ctx.createGain();
      osc.frequency.value = 880; gain.gain.value = 0.1;
      osc.connect(gain); gain.connect(ctx.destination);
      osc.start(); osc.stop(ctx.currentTime + 0.25);
    } catch (e) { /* no sound before the person has touched the page: the badge still shows */ }
  }
  document.body.addEventListener("live:merged", function () {
    var now = waiting(), badge = document.getElementById("new-calls"), current = keys();
    Object.keys(current).filter(function (k) { return !known[k]; }).slice(0, 3).forEach(function (k) {
      tell(current[k]);
    });
    known = current;
    if (now > seen && badge) {
      badge.textContent = "新 " + (now - seen);
      badge.hidden = false;
      document.title = "(" + now + ") " + title;
      tone();
    } else if (now <= seen && badge) {
      badge.hidden = true;
      document.title = title;
    }
    seen = now;
  });
})();
