// Tick the deadlines down between the server's answers: the server computed each "time left" in
// its SLA time basis; this only counts calendar minutes until the next refresh (every 15 s).
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
      shown.textContent = "已定位（±" + Math.round(p.coords.accuracy) + " 米）";
    }, function () { shown.textContent = "无法定位：请选择网格"; }, {enableHighAccuracy: true, timeout: 15000});
  });
})();

// The desk: a badge and a short tone when a new call arrives (the list refreshes every 15 s).
(function () {
  var calls = document.getElementById("calls");
  if (!calls) { return; }
  var title = document.title;
  function waiting() { return calls.querySelectorAll("article.call[data-state=waiting]").length; }
  var seen = waiting();
  function tone() {
    try {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      var ctx = new Ctx(), osc = ctx.createOscillator(), gain = ctx.createGain();
      osc.frequency.value = 880; gain.gain.value = 0.1;
      osc.connect(gain); gain.connect(ctx.destination);
      osc.start(); osc.stop(ctx.currentTime + 0.25);
    } catch (e) { /* no sound before the person has touched the page: the badge still shows */ }
  }
  document.body.addEventListener("htmx:afterSwap", function () {
    var now = waiting(), badge = document.getElementById("new-calls");
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
