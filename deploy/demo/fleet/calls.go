package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"fleetdemo/otlp"
)

// callPattern is a caller service that calls a callee service over real HTTP with a deadline.
type callPattern struct {
	caller, callee string
	route          string // the caller's inbound request (the trace root)
	operation      string // the call, as both the client and the server span name it
	dbStatement    string // the callee's database call
	honorsCancel   bool
}

const (
	callTimeout  = 150 * time.Millisecond
	requestEvery = 100 * time.Millisecond
)

// calls serves the callee on a loopback port and drives the caller against it until ctx ends.
func calls(ctx context.Context, exporter *otlp.Exporter, p callPattern, instance string) {
	callerRes := otlp.Resource{Service: p.caller, Instance: p.caller + "-1"}
	calleeRes := otlp.Resource{Service: p.callee, Instance: instance}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	server := &http.Server{Handler: handler(exporter, calleeRes, p)}
	go func() { _ = server.Serve(ln) }()
	url := "http://" + ln.Addr().String() + "/" + p.operation
	client := &http.Client{}

	var wg sync.WaitGroup
	tick := time.NewTicker(requestEvery)
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
			wg.Add(1)
			go func() { defer wg.Done(); request(exporter, client, callerRes, p, url) }()
		}
	}
	tick.Stop()
	wg.Wait()
	shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = server.Shutdown(shutdown) // waits for handlers still running (the ones ignoring cancellation)
}

// request is one inbound request of the caller: a root server span and a client span for the call.
func request(exporter *otlp.Exporter, client *http.Client, res otlp.Resource, p callPattern, url string) {
	root := &otlp.Span{Resource: res, Trace: otlp.NewTraceID(), ID: otlp.NewSpanID(), Name: p.route,
		Kind: otlp.KindServer, Start: time.Now(), Attrs: map[string]any{"http.request.method": "GET"}}
	call := &otlp.Span{Resource: res, Trace: root.Trace, ID: otlp.NewSpanID(), Parent: root.ID, Name: p.operation,
		Kind: otlp.KindClient, Start: time.Now(), Attrs: map[string]any{"http.request.method": "POST", "server.address": "127.0.0.1"}}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader("{}"))
	req.Header.Set("traceparent", fmt.Sprintf("00-%s-%s-01", root.Trace, call.ID))
	resp, err := client.Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		call.Attrs["http.response.status_code"] = resp.StatusCode
	}
	call.End = time.Now()
	root.End = time.Now()
	if err != nil {
		call.Status, call.StatusMsg = otlp.StatusError, err.Error() // `Post "...": context deadline exceeded`
		call.Attrs["error.type"] = "context.DeadlineExceeded"
		root.Status = otlp.StatusError
		root.Attrs["http.response.status_code"] = 504
	} else {
		root.Attrs["http.response.status_code"] = 200
	}
	exporter.End(call)
	exporter.End(root)
}

// handler is the callee. Its CancelTrace-style hook records a cancel-event (cause parent_cancelled) on the
// server span when the request's context is cancelled because the caller gave up. Whether the work then
// stops is the difference between the healthy and the nocancel scenario.
func handler(exporter *otlp.Exporter, res otlp.Resource, p callPattern) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		span := &otlp.Span{Resource: res, ID: otlp.NewSpanID(), Name: p.operation, Kind: otlp.KindServer,
			Start: time.Now(), Attrs: map[string]any{"http.request.method": r.Method}}
		span.Trace, span.Parent = parseTraceparent(r.Header.Get("traceparent"))
		// Reading the body to the end lets net/http watch the connection, which is how it notices the
		// caller hanging up and cancels r.Context().
		_, _ = io.Copy(io.Discard, r.Body)
		payload := make([]byte, 64<<10) // the request's ordinary garbage, so the GC has something to do
		payload[0] = 1
		ctx := r.Context()
		var mu sync.Mutex
		var cancelEvent *otlp.Event
		stopHook := context.AfterFunc(ctx, func() {
			pcs := make([]uintptr, 64)
			ev := otlp.Event{Name: "cancel-event", Time: time.Now(), Attrs: map[string]any{
				"cancel.cause": "parent_cancelled", "cancel.stack_depth": runtime.Callers(0, pcs),
				"cancel.operation": p.operation}}
			mu.Lock()
			cancelEvent = &ev
			mu.Unlock()
		})

		work := time.Duration(20+rand.Intn(230)) * time.Millisecond
		if !p.honorsCancel {
			work = time.Duration(400+rand.Intn(300)) * time.Millisecond
		}
		status := http.StatusOK
		if p.honorsCancel {
			db := childSpan(span, p.dbStatement)
			select {
			case <-time.After(work):
			case <-ctx.Done():
				status = 499
			}
			db.End = time.Now()
			exporter.End(db)
		} else {
			// Validation, then the insert: plain sleeps standing in for calls that never look at ctx.
			time.Sleep(work / 2)
			db := childSpan(span, p.dbStatement)
			time.Sleep(work / 2)
			db.End = time.Now()
			exporter.End(db)
		}
		w.WriteHeader(status)
		stopHook()
		span.End = time.Now()
		mu.Lock()
		if cancelEvent != nil {
			span.Events = append(span.Events, *cancelEvent)
		}
		mu.Unlock()
		exporter.End(span)
	})
}

func childSpan(parent *otlp.Span, statement string) *otlp.Span {
	return &otlp.Span{Resource: parent.Resource, Trace: parent.Trace, ID: otlp.NewSpanID(), Parent: parent.ID,
		Name: statement, Kind: otlp.KindClient, Start: time.Now(),
		Attrs: map[string]any{"db.system.name": "postgresql", "db.query.text": statement}}
}

// parseTraceparent reads a W3C traceparent header; a missing or bad one starts a new trace.
func parseTraceparent(h string) (otlp.TraceID, otlp.SpanID) {
	var t otlp.TraceID
	var s otlp.SpanID
	parts := strings.Split(h, "-")
	if len(parts) == 4 {
		tb, err1 := hex.DecodeString(parts[1])
		sb, err2 := hex.DecodeString(parts[2])
		if err1 == nil && err2 == nil && len(tb) == 16 && len(sb) == 8 {
			copy(t[:], tb)
			copy(s[:], sb)
			return t, s
		}
	}
	return otlp.NewTraceID(), s
}
