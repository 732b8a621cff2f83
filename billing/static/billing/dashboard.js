// Draws the usage dashboard's charts from the JSON the page embeds (no inline script: CSP).
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("usage-charts").textContent);
  if (typeof Chart === "undefined") return; // Chart.js missing (not installed): tables still work

  const palette = ["#417690", "#e07b39", "#5a9e4b", "#b0413e", "#8064a2", "#c9a227", "#2f8f9d"];
  const line = (label, values, i, extra) =>
    Object.assign({ label, data: values, borderColor: palette[i % palette.length],
      backgroundColor: palette[i % palette.length], tension: 0.2, pointRadius: 2 }, extra || {});
  const draw = (id, type, datasets, options) =>
    new Chart(document.getElementById(id), {
      type, data: { labels: data.labels, datasets },
      options: Object.assign({ responsive: true, interaction: { mode: "index", intersect: false } },
        options || {}),
    });

  draw("chart-activity", "line", [
    line("Active users", data.activity.active_users, 0),
    line("Messages", data.activity.requests, 1),
  ]);
  const stacked = { scales: { x: { stacked: true }, y: { stacked: true } } };
  draw("chart-tokens", "bar", data.models.map((m, i) => line(m.model, m.tokens, i)), stacked);
  draw("chart-cost", "bar", data.models.map((m, i) => line(m.model, m.cost_usd, i)), stacked);
  draw("chart-ttft", "line", [line("p50", data.ttft.p50, 0), line("p95", data.ttft.p95, 3)]);
  const percent = { scales: { y: { min: 0, max: 1, ticks: { format: { style: "percent" } } } } };
  draw("chart-rates", "line", [
    line("Cache hit ratio", data.rates.cache_hit, 2),
    line("Error rate", data.rates.error, 3),
  ], percent);
})();
