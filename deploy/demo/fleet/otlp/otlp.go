// Package otlp is a small OTLP/HTTP JSON exporter built on the standard library: log records, spans and
// gauge/sum metrics, batched and posted to /v1/logs, /v1/traces and /v1/metrics. Ids are hex, as the
// OTLP/JSON encoding requires; 64-bit integers are strings.
package otlp

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// Resource identifies one service instance.
type Resource struct {
	Service  string
	Instance string
}

func (r Resource) json() map[string]any {
	host, _ := os.Hostname()
	return map[string]any{"attributes": attrs(map[string]any{
		"service.name":           r.Service,
		"service.instance.id":    r.Instance,
		"host.name":              host,
		"process.pid":            os.Getpid(),
		"telemetry.sdk.language": "go",
	})}
}

// TraceID and SpanID are W3C ids.
type TraceID [16]byte
type SpanID [8]byte

func NewTraceID() (t TraceID) { _, _ = rand.Read(t[:]); return }
func NewSpanID() (s SpanID)   { _, _ = rand.Read(s[:]); return }

func (t TraceID) String() string { return hex.EncodeToString(t[:]) }
func (s SpanID) String() string {
	if s == (SpanID{}) {
		return ""
	}
	return hex.EncodeToString(s[:])
}

// Span kinds and status codes as OTLP numbers them.
const (
	KindInternal = 1
	KindServer   = 2
	KindClient   = 3
	StatusUnset  = 0
	StatusOK     = 1
	StatusError  = 2
)

// Event is a span event (a cancel-event, for instance).
type Event struct {
	Name  string
	Time  time.Time
	Attrs map[string]any
}

// Span is one finished span of one service.
type Span struct {
	Resource   Resource
	Trace      TraceID
	ID         SpanID
	Parent     SpanID
	Name       string
	Kind       int
	Start, End time.Time
	Attrs      map[string]any
	Events     []Event
	Status     int
	StatusMsg  string
}

// Exporter batches records and posts them every Interval. Safe for concurrent use.
type Exporter struct {
	Endpoint string // e.g. http://127.0.0.1:4318
	Interval time.Duration
	client   *http.Client

	mu    sync.Mutex
	logs  map[Resource][]map[string]any
	spans map[Resource][]map[string]any
	stop  chan struct{}
	done  chan struct{}
}

// NewExporter starts the background flusher.
func NewExporter(endpoint string, interval time.Duration) *Exporter {
	e := &Exporter{
		Endpoint: endpoint, Interval: interval, client: &http.Client{Timeout: 10 * time.Second},
		logs: map[Resource][]map[string]any{}, spans: map[Resource][]map[string]any{},
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	go e.loop()
	return e
}

// Log queues one log record whose body is a line of text.
func (e *Exporter) Log(r Resource, t time.Time, body string) {
	rec := map[string]any{
		"timeUnixNano": ns(t), "observedTimeUnixNano": ns(time.Now()),
		"severityNumber": 9, "severityText": "INFO", "body": map[string]any{"stringValue": body},
	}
	e.mu.Lock()
	e.logs[r] = append(e.logs[r], rec)
	e.mu.Unlock()
}

// End queues a finished span.
func (e *Exporter) End(s *Span) {
	events := []map[string]any{}
	for _, ev := range s.Events {
		events = append(events, map[string]any{"timeUnixNano": ns(ev.Time), "name": ev.Name, "attributes": attrs(ev.Attrs)})
	}
	rec := map[string]any{
		"traceId": s.Trace.String(), "spanId": s.ID.String(), "parentSpanId": s.Parent.String(),
		"name": s.Name, "kind": s.Kind, "startTimeUnixNano": ns(s.Start), "endTimeUnixNano": ns(s.End),
		"attributes": attrs(s.Attrs), "events": events,
		"status": map[string]any{"code": s.Status, "message": s.StatusMsg},
	}
	e.mu.Lock()
	e.spans[s.Resource] = append(e.spans[s.Resource], rec)
	e.mu.Unlock()
}

// Point is one metric value at one time.
type Point struct {
	Name  string
	Unit  string
	Value int64
	Sum   bool // an UpDownCounter or counter (semconv's instrument type), else a gauge
	Mono  bool
}

// Metrics posts one set of points right away (metrics are already sampled once per interval).
func (e *Exporter) Metrics(r Resource, t time.Time, start time.Time, points []Point) error {
	metrics := []map[string]any{}
	for _, p := range points {
		dp := []map[string]any{{"timeUnixNano": ns(t), "startTimeUnixNano": ns(start), "asInt": strconv.FormatInt(p.Value, 10)}}
		m := map[string]any{"name": p.Name, "unit": p.Unit}
		if p.Sum {
			m["sum"] = map[string]any{"dataPoints": dp, "aggregationTemporality": 2, "isMonotonic": p.Mono}
		} else {
			m["gauge"] = map[string]any{"dataPoints": dp}
		}
		metrics = append(metrics, m)
	}
	body := map[string]any{"resourceMetrics": []any{map[string]any{
		"resource": r.json(), "scopeMetrics": []any{map[string]any{"scope": scope(), "metrics": metrics}},
	}}}
	return e.post("/v1/metrics", body)
}

// Close flushes what is queued and stops the flusher.
func (e *Exporter) Close() {
	close(e.stop)
	<-e.done
}

func (e *Exporter) loop() {
	defer close(e.done)
	tick := time.NewTicker(e.Interval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			e.flush()
		case <-e.stop:
			e.flush()
			return
		}
	}
}

func (e *Exporter) flush() {
	e.mu.Lock()
	logs, spans := e.logs, e.spans
	e.logs, e.spans = map[Resource][]map[string]any{}, map[Resource][]map[string]any{}
	e.mu.Unlock()
	if len(logs) > 0 {
		var rl []any
		for r, recs := range logs {
			rl = append(rl, map[string]any{"resource": r.json(),
				"scopeLogs": []any{map[string]any{"scope": scope(), "logRecords": recs}}})
		}
		e.report(e.post("/v1/logs", map[string]any{"resourceLogs": rl}))
	}
	if len(spans) > 0 {
		var rs []any
		for r, recs := range spans {
			rs = append(rs, map[string]any{"resource": r.json(),
				"scopeSpans": []any{map[string]any{"scope": scope(), "spans": recs}}})
		}
		e.report(e.post("/v1/traces", map[string]any{"resourceSpans": rs}))
	}
}

func (e *Exporter) report(err error) {
	if err != nil {
		fmt.Fprintf(os.Stdout, "otlp: %v\n", err) // stdout: stderr carries the runtime's gctrace lines
	}
}

// post sends one request, retrying a few times on 429/503 as the OTLP specification asks.
func (e *Exporter) post(path string, body any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	var last error
	for attempt := 0; attempt < 5; attempt++ {
		resp, err := e.client.Post(e.Endpoint+path, "application/json", bytes.NewReader(data))
		if err != nil {
			last = err
		} else {
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return nil
			}
			last = fmt.Errorf("%s: HTTP %d", path, resp.StatusCode)
			if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
				return last
			}
		}
		time.Sleep(time.Duration(200*(attempt+1)) * time.Millisecond)
	}
	return last
}

func scope() map[string]any { return map[string]any{"name": "fleetdemo", "version": "1"} }

func ns(t time.Time) string { return strconv.FormatInt(t.UnixNano(), 10) }

func attrs(m map[string]any) []any {
	out := []any{}
	for k, v := range m {
		var val map[string]any
		switch x := v.(type) {
		case string:
			val = map[string]any{"stringValue": x}
		case int:
			val = map[string]any{"intValue": strconv.Itoa(x)}
		case int64:
			val = map[string]any{"intValue": strconv.FormatInt(x, 10)}
		case bool:
			val = map[string]any{"boolValue": x}
		case float64:
			val = map[string]any{"doubleValue": x}
		default:
			val = map[string]any{"stringValue": fmt.Sprint(x)}
		}
		out = append(out, map[string]any{"key": k, "value": val})
	}
	return out
}
