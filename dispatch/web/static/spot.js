// The ticket page's small map: the report's grid as an outline and, when the report had one, its
// position as a marker (both in WGS-84). Tiles only when the deployment names an intranet tile service.
(function () {
  "use strict";
  var box = document.getElementById("spot-map"), data = document.getElementById("spot-data");
  if (!box || !data || !window.L) { return; }
  var spot = JSON.parse(data.textContent), config = JSON.parse(document.getElementById("spot-config").textContent);
  var map = window.L.map(box, {attributionControl: !!config.tiles, zoomSnap: 0.25, scrollWheelZoom: false});
  if (config.tiles) { window.L.tileLayer(config.tiles, {attribution: config.attribution, maxZoom: 19}).addTo(map); }
  // the view first (a vector layer added to a map without one cannot draw), then the layers
  var outline = spot.grid ? window.L.geoJSON(spot.grid, {style: {color: "#c0392b", weight: 2, fillOpacity: 0.08}}) : null;
  var at = spot.position ? [spot.position.lat, spot.position.lon] : null;
  var bounds = outline ? outline.getBounds() : window.L.latLngBounds([at, at]);
  if (at) { bounds.extend(at); }
  map.fitBounds(bounds.pad(0.2), {maxZoom: 18});
  if (outline) { outline.addTo(map); }
  if (at) {
    window.L.circleMarker(at, {radius: 8, color: "#1d2733", weight: 2, fillColor: "#c0392b", fillOpacity: 0.9})
      .addTo(map).bindTooltip(spot.grid_name, {direction: "top"});
    if (spot.position.accuracy) {
      window.L.circle(at, {radius: spot.position.accuracy, color: "#c0392b", weight: 1, fillOpacity: 0.05}).addTo(map);
    }
  }
  box.setAttribute("data-ready", spot.position ? "marker" : "grid");
})();
