// The dashboard and the big screen: figures, ECharts charts, the Leaflet map of grids and the
// newest tickets, drawn from the server's JSON (dispatch.service.cockpit). Live: the server's event
// stream says when the read models moved on, and the page asks again (and every minute, since
// deadlines pass without events). Time travel: the slider or the picker asks for the figures as
// of a past instant, and the page stays there until "回到实时".
(function () {
  "use strict";
  var root = document.getElementById("board");
  if (!root) { return; }
  var base = root.getAttribute("data-base"), screen = root.getAttribute("data-mode") === "screen";
  var data = JSON.parse(document.getElementById("board-data").textContent);
  var config = JSON.parse(document.getElementById("board-config").textContent);
  var params = new URLSearchParams(window.location.search);
  var live = !params.get("as_of"), charts = {}, map = null, shapes = null, layer = null, reports = null;
  var STATUS = config.status || {}, CHANNEL = config.channels || {};

  // -- words and numbers ------------------------------------------------------------------------
  function fmt(value, kind) {
    if (value === null || value === undefined) { return "—"; }
    if (kind === "rate") { return (value * 100).toFixed(1) + "%"; }
    if (kind === "score") { return (value * 100).toFixed(1); }
    return String(value);
  }
  function parts(iso) {  // an instant's local parts in the reference data's time zone
    var out = {};
    new Intl.DateTimeFormat("en-GB", {timeZone: config.tz, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23"}).formatToParts(new Date(iso))
      .forEach(function (p) { out[p.type] = p.value; });
    return out;
  }
  function local(iso) { var p = parts(iso); return p.month + "-" + p.day + " " + p.hour + ":" + p.minute; }
  function pickerValue(iso) { var p = parts(iso); return p.year + "-" + p.month + "-" + p.day + "T" + p.hour + ":" + p.minute; }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  // -- asking the server --------------------------------------------------------------------------
  function query(extra) {
    var q = new URLSearchParams();
    ["street", "community", "period"].forEach(function (k) { if (params.get(k)) { q.set(k, params.get(k)); } });
    if (!screen && !q.get("street") && data.figures.street && !data.figures.community) { q.set("street", data.figures.street); }
    if (extra) { Object.keys(extra).forEach(function (k) { q.set(k, extra[k]); }); }
    return q;
  }
  var asking = null;
  function refresh() {
    var q = query(live ? null : {as_of: params.get("as_of")});
    if (asking) { asking.abort(); }
    asking = new AbortController();
    return fetch(base + "/data?" + q.toString(), {credentials: "same-origin", signal: asking.signal})
      .then(function (r) {
        if (r.status === 401) { throw new Error(screen ? "大屏链接已失效：请向管理员索取新的链接" : "登录已过期：请重新登录"); }
        if (!r.ok) { return r.json().then(function (p) { throw new Error(p.detail || "暂时无法读取数据"); }); }
        return r.json();
      })
      .then(function (fresh) { data = fresh; render(); })
      .catch(function (e) { if (e.name !== "AbortError") { notice(e.message); } });
  }
  function notice(text) {
    var shown = document.getElementById("live");
    if (shown) { shown.textContent = text; shown.className = "live warn"; }
  }

  // -- drawing --------------------------------------------------------------------------------------
  function chart(id) {
    var node = document.getElementById(id);
    if (!node || !window.echarts) { return null; }
    if (!charts[id]) { charts[id] = window.echarts.init(node, screen ? "dark" : null, {renderer: "canvas"}); }
    return charts[id];
  }
  var ink = screen ? "#dfe8f3" : "#1d2733";
  function nothing(c, empty) {  // a chart with nothing to draw says so
    c.setOption({graphic: empty ? [{type: "text", left: "center", top: "middle",
      style: {text: "本期暂无数据", fill: screen ? "#9fb3c8" : "#5b6b7c", fontSize: screen ? 20 : 14}}] : []});
  }
  function axisText() { return {color: ink, fontSize: screen ? 16 : 12}; }

  function render() {
    var f = data.figures;
    document.querySelectorAll("[data-figure]").forEach(function (node) {
      var key = node.getAttribute("data-figure"), value = f[key];
      node.textContent = fmt(value, node.getAttribute("data-kind"));
      node.setAttribute("data-value", JSON.stringify(value === undefined ? null : value));
      if (node.getAttribute("data-kind") === "alert") { node.parentNode.classList.toggle("on", value > 0); }
      if (key === "reported" || key === "closed") {  // 今日上报, 本月办结 …
        node.parentNode.querySelector(".label").textContent = data.period_name.slice(-1) === "日" ?
          "今日" + (key === "reported" ? "上报" : "办结") : data.period_name + (key === "reported" ? "上报" : "办结");
      }
    });
    document.getElementById("place-name").textContent = f.name;
    var period = document.getElementById("period-text");
    if (period) {
      period.textContent = data.period_name + "（" + local(data.from) + " 起）· 截至 " + local(data.as_of);
      period.setAttribute("data-as-of", data.as_of);
      period.setAttribute("data-from", data.from);
      period.setAttribute("data-to", data.to);
    }
    var banner = document.getElementById("live");
    if (banner) {
      banner.textContent = live ? "实时" : "历史视图：截至 " + local(data.as_of);
      banner.className = live ? "live" : "live past";
    }
    var picker = document.getElementById("when"), slider = document.getElementById("slider");
    if (picker && live && !picker.dataset.touched) { picker.value = pickerValue(data.as_of); }  // not under typing
    if (slider) {  // where the instant shown sits in the period (or since the first report)
      var s = span(), at = Date.parse(data.as_of);
      slider.value = String(Math.round(Math.min(1, Math.max(0, (at - s[0]) / (s[1] - s[0]))) * 1000));
    }
    drawTrend(); drawCategories(); drawChannels(); drawRates(); drawDepartments();
    drawUnits(); drawScorecard(); drawLatest(); drawMap();
    document.documentElement.dataset.drawn = String(Number(document.documentElement.dataset.drawn || 0) + 1);
  }

  function drawTrend() {
    var c = chart("chart-trend");
    if (!c) { return; }
    var days = data.trend.map(function (r) { return r.day.slice(5); });
    function line(name, key) { return {name: name, type: "line", smooth: true, data: data.trend.map(function (r) { return r[key]; })}; }
    c.setOption({backgroundColor: "transparent", tooltip: {trigger: "axis"}, legend: {top: 0, textStyle: axisText()},
      grid: {left: 40, right: 16, top: 36, bottom: 28}, xAxis: {type: "category", data: days, axisLabel: axisText()},
      yAxis: {type: "value", minInterval: 1, axisLabel: axisText()},
      series: [line("上报", "reported"), line("办结", "closed"), line("督办升级", "escalations")]}, true);
  }
  function drawCategories() {
    var c = chart("chart-category");
    if (!c) { return; }
    var names = data.names.categories, rows = Object.keys(data.figures.by_category || {}).map(function (k) {
      return [names[k] || "其他", data.figures.by_category[k]];
    }).sort(function (a, b) { return a[1] - b[1]; });
    c.setOption({backgroundColor: "transparent", tooltip: {trigger: "axis"}, grid: {left: 110, right: 24, top: 10, bottom: 24},
      xAxis: {type: "value", minInterval: 1, axisLabel: axisText()},
      yAxis: {type: "category", data: rows.map(function (r) { return r[0]; }), axisLabel: axisText()},
      series: [{name: "上报", type: "bar", data: rows.map(function (r) { return r[1]; }), label: {show: true, position: "right", color: ink}}]}, true);
    nothing(c, !rows.length);
  }
  function drawChannels() {
    var c = chart("chart-channel");
    if (!c) { return; }
    var by = data.figures.by_channel || {};
    c.setOption({backgroundColor: "transparent", tooltip: {trigger: "item"}, legend: {bottom: 0, textStyle: axisText()},
      series: [{name: "来源渠道", type: "pie", radius: ["35%", "65%"], label: {color: ink, formatter: "{b} {c}"},
        data: Object.keys(by).map(function (k) { return {name: CHANNEL[k] || "其他", value: by[k]}; })}]}, true);
    nothing(c, !Object.keys(by).length);
  }
  function drawRates() {
    var c = chart("chart-rates");
    if (!c) { return; }
    var f = data.figures, items = [["响应率", f.response_rate], ["解决率", f.resolution_rate], ["满意率", f.satisfaction_rate],
      ["按时受理", f.accept_on_time_rate], ["按时派遣", f.dispatch_on_time_rate], ["首问办结", f.first_contact_rate]];
    c.setOption({backgroundColor: "transparent", tooltip: {trigger: "axis", valueFormatter: function (v) { return fmt(v === null ? null : v / 100, "rate"); }},
      grid: {left: 40, right: 16, top: 16, bottom: 28},
      xAxis: {type: "category", data: items.map(function (i) { return i[0]; }), axisLabel: axisText()},
      yAxis: {type: "value", max: 100, axisLabel: axisText()},
      series: [{type: "bar", name: "比率", data: items.map(function (i) { return i[1] === null ? null : Math.round(i[1] * 1000) / 10; }),
        label: {show: true, position: "top", color: ink, formatter: "{c}%"}}]}, true);
    nothing(c, items.every(function (i) { return i[1] === null; }));
  }
  function drawDepartments() {
    var c = chart("chart-departments");
    if (!c) { return; }
    var rows = data.scorecard.filter(function (r) { return r.dispatched > 0; });
    function series(name, key) { return {name: name, type: "bar", data: rows.map(function (r) { return r[key] === null ? null : Math.round(r[key] * 1000) / 10; })}; }
    c.setOption({backgroundColor: "transparent", tooltip: {trigger: "axis"}, legend: {top: 0, textStyle: axisText()},
      grid: {left: 40, right: 16, top: 36, bottom: 28},
      xAxis: {type: "category", data: rows.map(function (r) { return r.name; }), axisLabel: axisText()},
      yAxis: {type: "value", max: 100, axisLabel: axisText()},
      series: [series("报到及时率", "ack_on_time_rate"), series("处置及时率", "handle_on_time_rate"), series("按时结案率", "close_on_time_rate")]}, true);
    nothing(c, !rows.length);
  }
  function cells(row, values) {
    values.forEach(function (v) { row.appendChild(el("td", "", v)); });
    return row;
  }
  function drawUnits() {
    var table = document.getElementById("units");
    if (!table) { return; }
    var f = data.figures, community = !!f.community, units = community ? f.grids : f.communities;
    var ranks = {};
    (f.ranking || []).forEach(function (r) { ranks[r.community] = r.rank; });
    var head = table.tHead, body = table.tBodies[0];
    head.textContent = ""; body.textContent = "";
    var cols = screen ? ["名称", "在办", "超时", "满意率", "综合得分", "排名"]
      : ["名称", "在办", "上报", "办结", "报到超时", "处置超时", "已评价", "满意率", "综合得分", "排名"];
    if (community) { cols = cols.filter(function (c) { return c !== "排名"; }); }
    var tr = el("tr"); cols.forEach(function (c) { tr.appendChild(el("th", "", c)); }); head.appendChild(tr);
    var title = document.getElementById("units-title");
    if (title) { title.textContent = community ? "网格情况" : "社区排名"; }
    var sorted = units.slice().sort(function (a, b) {
      var ra = ranks[a.community] || 1e9, rb = ranks[b.community] || 1e9;
      return ra - rb || b.open - a.open;
    });
    sorted.forEach(function (u) {
      var late = u.ack_overdue + u.handle_overdue, rank = ranks[u.community];
      var values = screen ? [u.name, u.open, late, fmt(u.satisfaction_rate, "rate"), fmt(u.composite, "score")]
        : [u.name, u.open, u.reported, u.closed, u.ack_overdue, u.handle_overdue, u.evaluated,
           fmt(u.satisfaction_rate, "rate"), fmt(u.composite, "score")];
      if (!community) { values.push(rank ? String(rank) : "—"); }
      var row = cells(el("tr"), values);
      if (late > 0) { row.className = "late"; }
      body.appendChild(row);
    });
    var note = document.getElementById("ranking-note");
    if (note) {
      note.textContent = community ? "" : "评价满 " + f.min_evaluated + " 件的社区参与排名（按综合得分）；" +
        ((f.unranked || []).length ? "样本不足未排名 " + f.unranked.length + " 个" : "全部参与排名");
    }
  }
  function drawScorecard() {
    var table = document.getElementById("scorecard");
    if (!table) { return; }
    var body = table.tBodies[0];
    body.textContent = "";
    data.scorecard.forEach(function (r) {
      body.appendChild(cells(el("tr"), [r.name, r.dispatched, fmt(r.ack_on_time_rate, "rate"), fmt(r.handle_on_time_rate, "rate"),
        fmt(r.close_on_time_rate, "rate"), fmt(r.rejection_rate, "rate"), fmt(r.satisfaction_rate, "rate"), fmt(r.composite, "score")]));
    });
    if (!data.scorecard.length) { body.appendChild(cells(el("tr"), ["本期没有派单"])); }
  }
  function drawLatest() {
    var list = document.getElementById("latest");
    if (!list) { return; }
    list.textContent = "";
    data.latest.forEach(function (t) {
      var item = el("li");
      item.setAttribute("data-case", t.case_no || "");
      item.appendChild(el("span", "case", t.case_no || "（编号生成中）"));
      var where = t.grid_name.indexOf(t.community_name) === 0 ? t.grid_name : t.community_name + t.grid_name;
      item.appendChild(el("span", "what", " " + t.category_name + " · " + where + " "));
      item.appendChild(el("span", "tag state", STATUS[t.status] || "—"));
      item.appendChild(el("time", "", " " + local(t.reported_at)));
      list.appendChild(item);
    });
    if (!data.latest.length) { list.appendChild(el("li", "empty", "还没有工单")); }
  }

  // -- the map of grids ------------------------------------------------------------------------------
  function colour(grid) {
    var w = data.grids[grid];
    if (w && (w.ack_overdue + w.handle_overdue) > 0) { return "#c0392b"; }
    if (w && w.open > 0) { return w.open >= 5 ? "#e67e22" : "#f5b041"; }
    return "#7dcea0";
  }
  function words(grid) {
    var w = data.grids[grid] || {open: 0, ack_overdue: 0, handle_overdue: 0};
    return (data.names.grids[grid] || "") + "：在办 " + w.open + "，超时 " + (w.ack_overdue + w.handle_overdue);
  }
  function drawMap() {
    if (!document.getElementById("map")) { return; }
    if (shapes === null) {
      shapes = false;
      fetch(base + "/boundaries?" + query().toString(), {credentials: "same-origin"}).then(function (r) { return r.json(); })
        .then(function (geo) { shapes = geo; }, function () { shapes = {features: []}; }).then(drawMap);
      return;
    }
    if (!shapes) { return; }
    var mine = shapes.features.filter(function (f) { return f.id in data.names.grids; });
    if (!mine.length || !window.L) { return drawTiles(); }
    if (!map) {
      map = window.L.map("map", {attributionControl: !!config.tiles, zoomSnap: 0.25, scrollWheelZoom: !screen,
                                 maxZoom: 19});
      if (config.tiles) { window.L.tileLayer(config.tiles, {attribution: config.attribution, maxZoom: 19}).addTo(map); }
      layer = window.L.geoJSON({type: "FeatureCollection", features: mine}, {
        style: function (f) { return {color: "#445", weight: 1, fillColor: colour(f.id), fillOpacity: 0.75}; },
        onEachFeature: function (f, l) { l.bindTooltip(function () { return words(f.id); }, {sticky: true}); }
      }).addTo(map);
      map.fitBounds(layer.getBounds(), {padding: [8, 8]});
      if (window.L.markerClusterGroup) {
        // the reports themselves, clustered at street scale; the grid colouring stays as a layer
        reports = window.L.markerClusterGroup({maxClusterRadius: 40, disableClusteringAtZoom: 18,
                                               showCoverageOnHover: false});
        reports.addTo(map);
        window.L.control.layers(null, {"网格着色": layer, "上报点": reports}, {collapsed: false}).addTo(map);
      }
    } else {
      layer.setStyle(function (f) { return {color: "#445", weight: 1, fillColor: colour(f.id), fillOpacity: 0.75}; });
    }
    drawReports();
  }
  function left(minutes) {
    if (minutes === null || minutes === undefined) { return "—"; }
    var late = minutes < 0, m = Math.abs(minutes), h = Math.floor(m / 60);
    var text = h ? h + "小时" + (m % 60) + "分" : m + "分钟";
    return late ? "超时 " + text : "剩余 " + text;
  }
  function popup(r) {  // case number, category, status, time left: nothing personal
    var box = el("div", "report-popup");
    box.appendChild(el("b", "case", r.case_no || "（编号生成中）"));
    box.appendChild(el("div", "", r.category_name + " · " + r.grid_name));
    box.appendChild(el("div", "", (STATUS[r.status] || "—") + " · " + left(r.minutes_left)));
    var link = el("a", "", "查看案件");
    link.href = "/tickets/" + r.ticket_id;
    if (!screen) { box.appendChild(link); }
    return box;
  }
  function drawReports() {
    if (!reports) { return; }
    reports.clearLayers();
    var shown = (data.reports || []).map(function (r) {
      var dot = window.L.circleMarker([r.lat, r.lon], {radius: 7, weight: 2, color: "#fff", fillOpacity: 0.95,
                                                      fillColor: r.overdue ? "#c0392b" : "#e67e22"});
      dot.bindPopup(function () { return popup(r); });
      dot.options.caseNo = r.case_no;
      return dot;
    });
    reports.addLayers(shown);
    document.getElementById("map").setAttribute("data-reports", String(shown.length));
  }
  function drawTiles() {  // no boundaries in the reference data: one tile per grid, in order
    var box = document.getElementById("tiles"), mapBox = document.getElementById("map");
    mapBox.hidden = true; box.hidden = false; box.textContent = "";
    Object.keys(data.names.grids).forEach(function (g) {
      var tile = el("span", "tile", data.names.grids[g].replace(/网格$/, ""));
      tile.title = words(g);
      tile.style.background = colour(g);
      box.appendChild(tile);
    });
  }

  // -- live, and back in time ------------------------------------------------------------------------
  var pending = null;
  function soon() { if (live && !pending) { pending = setTimeout(function () { pending = null; refresh(); }, 250); } }
  if (window.EventSource) {
    var stream = new EventSource(base + "/events?" + query().toString());
    stream.addEventListener("changed", soon);
  }
  setInterval(function () { if (live) { refresh(); } }, 60000);

  function go(asOf) {
    var typed = document.getElementById("when");
    if (typed) { delete typed.dataset.touched; }
    if (asOf) { params.set("as_of", asOf); } else { params.delete("as_of"); }
    live = !asOf;
    if (!screen) { history.replaceState(null, "", window.location.pathname + "?" + params.toString()); }
    refresh();
  }
  var slider = document.getElementById("slider"), picker = document.getElementById("when");
  function span() {  // the slider's range: the period shown, up to now
    var start = Date.parse(data.from), end = Math.min(Date.parse(data.to), Date.now());
    return [start, Math.max(end, start + 60000)];
  }
  if (slider) {
    slider.addEventListener("change", function () {
      var s = span(), at = new Date(s[0] + (s[1] - s[0]) * slider.value / 1000);
      if (slider.value === "1000") { return go(null); }
      picker.value = pickerValue(at.toISOString());
      go(picker.value);
    });
  }
  if (picker) {  // a live refresh never overwrites an instant the person is typing
    picker.addEventListener("input", function () { picker.dataset.touched = "1"; });
  }
  var travel = document.getElementById("travel");
  if (travel) { travel.addEventListener("click", function () { if (picker.value) { go(picker.value); } }); }
  var now = document.getElementById("now");
  if (now) { now.addEventListener("click", function () { if (slider) { slider.value = "1000"; } go(null); }); }
  if (picker && !live) { picker.value = pickerValue(data.as_of); }

  var choose = document.querySelector("form.choose");
  if (choose) {
    choose.addEventListener("change", function (e) {
      if (e.target.id === "street") { document.getElementById("community").value = ""; }
      choose.submit();
    });
  }
  var clock = document.getElementById("clock");
  if (clock) {
    setInterval(function () { var p = parts(new Date().toISOString()); clock.textContent = p.hour + ":" + p.minute + ":" + p.second; }, 1000);
  }
  var full = document.getElementById("fullscreen");
  if (full) {
    full.addEventListener("click", function () {
      if (document.documentElement.requestFullscreen) { document.documentElement.requestFullscreen().catch(function () {}); }
    });
  }
  window.addEventListener("resize", function () { Object.keys(charts).forEach(function (k) { charts[k].resize(); }); });
  render();
})();
