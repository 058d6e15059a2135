package drills

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/duomq/duomq/internal/atomicfile"
)

// Series are per-second figures of a drill, per DC, for the HTML report.
type Series struct {
	// Seconds since the start, one point per second.
	Seconds []float64 `json:"seconds"`
	// Acked: messages acked per second, by the DC that acked them.
	Acked map[string][]float64 `json:"acked"`
	// Delivered: deliveries per second, by the consumer's DC.
	Delivered map[string][]float64 `json:"delivered"`
	// Backlog: messages acked by the DC and not delivered yet, at the end
	// of each second (what a DC's consumers still have to read).
	Backlog map[string][]float64 `json:"backlog"`
}

// series computes the per-second figures from the records.
func series(start, end time.Time, sends []Send, ds []Delivery) Series {
	n := int(math.Ceil(end.Sub(start).Seconds())) + 1
	s := Series{Acked: map[string][]float64{}, Delivered: map[string][]float64{}, Backlog: map[string][]float64{}}
	for i := range n {
		s.Seconds = append(s.Seconds, float64(i))
	}
	bucket := func(t time.Time) int { return min(max(int(t.Sub(start).Seconds()), 0), n-1) }
	vec := func(m map[string][]float64, dc string) []float64 {
		if m[dc] == nil {
			m[dc] = make([]float64, n)
		}
		return m[dc]
	}
	ackedBy := map[string]string{}
	added := map[string][]float64{} // dc -> acked in second i
	for _, x := range sends {
		if x.Acked && x.DC != "" && ackedBy[x.ID] == "" {
			ackedBy[x.ID] = x.DC
			vec(s.Acked, x.DC)[bucket(x.At)]++
			vec(added, x.DC)[bucket(x.At)]++
		}
	}
	removed := map[string][]float64{}
	seen := map[string]bool{}
	for _, d := range ds {
		vec(s.Delivered, d.DC)[bucket(d.At)]++
		if dc := ackedBy[d.ID]; dc != "" && !seen[d.ID] {
			seen[d.ID] = true
			vec(removed, dc)[bucket(d.At)]++
		}
	}
	for dc, a := range added {
		b, r, level := vec(s.Backlog, dc), vec(removed, dc), 0.0
		for i := range n {
			level += a[i] - r[i]
			b[i] = level
		}
	}
	return s
}

// WriteHTML writes a self-contained HTML report (no network needed to
// open it): the summary, and charts of throughput and backlog per DC over
// time with the fault windows shaded.
func (r *Report) WriteHTML(path string) error {
	var summary bytes.Buffer
	r.PrintSummary(&summary)
	faults := make([][2]float64, 0, len(r.Faults))
	for _, f := range r.Faults {
		faults = append(faults, [2]float64{f.Start.Sub(r.Started).Seconds(), f.End.Sub(r.Started).Seconds()})
	}
	data := map[string]any{
		"Title":   "duomq drill " + r.Scenario,
		"Verdict": verdict(r.Pass),
		"Summary": summary.String(),
		"Charts": []template.HTML{
			chart("Acked per second, by the DC that acked", r.Series.Seconds, r.Series.Acked, faults),
			chart("Delivered per second, by the consumers' DC", r.Series.Seconds, r.Series.Delivered, faults),
			chart("Backlog: acked by the DC, not yet delivered", r.Series.Seconds, r.Series.Backlog, faults),
		},
	}
	var buf bytes.Buffer
	if err := page.Execute(&buf, data); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, buf.Bytes(), 0o644)
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"}

// chart draws one SVG line chart: a line per DC, fault windows shaded.
func chart(title string, xs []float64, lines map[string][]float64, faults [][2]float64) template.HTML {
	const w, h, pad = 720.0, 220.0, 40.0
	maxX, maxY := 1.0, 1.0
	if len(xs) > 0 {
		maxX = math.Max(xs[len(xs)-1], 1)
	}
	dcs := make([]string, 0, len(lines))
	for dc, ys := range lines {
		dcs = append(dcs, dc)
		for _, y := range ys {
			maxY = math.Max(maxY, y)
		}
	}
	sort.Strings(dcs)
	px := func(x float64) float64 { return pad + x/maxX*(w-2*pad) }
	py := func(y float64) float64 { return h - pad - y/maxY*(h-2*pad) }
	var b strings.Builder
	fmt.Fprintf(&b, `<figure><figcaption>%s</figcaption><svg viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img">`, template.HTMLEscapeString(title), w, h, w, h)
	for _, f := range faults {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#f3c4c4" opacity="0.6"><title>fault</title></rect>`,
			px(f[0]), pad, math.Max(px(f[1])-px(f[0]), 1), h-2*pad)
	}
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#333"/>`, pad, h-pad, w-pad, h-pad)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#333"/>`, pad, pad, pad, h-pad)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="11">%.0f</text><text x="%.0f" y="%.0f" font-size="11">0</text>`, 4.0, pad+4, maxY, 4.0, h-pad)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="11">%.0fs</text>`, w-pad-20, h-pad+16, maxX)
	for i, dc := range dcs {
		color := palette[i%len(palette)]
		var pts []string
		for j, y := range lines[dc] {
			if j < len(xs) {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(xs[j]), py(y)))
			}
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`, color, strings.Join(pts, " "))
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="12" fill="%s">%s</text>`, w-pad-90, pad+14*float64(i+1), color, template.HTMLEscapeString(dc))
	}
	b.WriteString(`</svg></figure>`)
	return template.HTML(b.String())
}

var page = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>body{font-family:sans-serif;margin:2em;max-width:60em}pre{background:#f6f6f6;padding:1em;overflow:auto}
figure{margin:1.5em 0}figcaption{font-weight:bold;margin-bottom:.3em}.PASS{color:#2ca02c}.FAIL{color:#d62728}</style>
</head><body>
<h1>{{.Title}}: <span class="{{.Verdict}}">{{.Verdict}}</span></h1>
<p>Shaded: fault windows (a killed site until its restart, a partition until its heal, a switchover or failover while it ran).</p>
{{range .Charts}}{{.}}{{end}}
<h2>Summary</h2>
<pre>{{.Summary}}</pre>
</body></html>
`))
