package main

import (
	"context"
	"fmt"
	"os"
	"runtime/metrics"
	"time"

	"fleetdemo/otlp"
)

// runtimeSamples are read from runtime/metrics and sent under today's OTel semantic-convention names.
var runtimeSamples = []string{
	"/sched/goroutines:goroutines",
	"/memory/classes/total:bytes",
	"/memory/classes/heap/released:bytes",
	"/gc/gomemlimit:bytes",
	"/gc/heap/goal:bytes",
	"/gc/heap/allocs:bytes",
	"/gc/gogc:percent",
	"/sched/gomaxprocs:threads",
	"/gc/cycles/total:gc-cycles",
}

func reportRuntime(ctx context.Context, exporter *otlp.Exporter, res otlp.Resource, every time.Duration) {
	start := time.Now()
	samples := make([]metrics.Sample, len(runtimeSamples))
	for i, name := range runtimeSamples {
		samples[i].Name = name
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		metrics.Read(samples)
		v := map[string]int64{}
		for _, s := range samples {
			if s.Value.Kind() == metrics.KindUint64 {
				v[s.Name] = int64(s.Value.Uint64())
			}
		}
		points := []otlp.Point{
			{Name: "go.goroutine.count", Unit: "{goroutine}", Value: v["/sched/goroutines:goroutines"], Sum: true},
			{Name: "go.memory.used", Unit: "By", Sum: true,
				Value: v["/memory/classes/total:bytes"] - v["/memory/classes/heap/released:bytes"]},
			{Name: "go.memory.limit", Unit: "By", Value: v["/gc/gomemlimit:bytes"], Sum: true},
			{Name: "go.memory.gc.goal", Unit: "By", Value: v["/gc/heap/goal:bytes"], Sum: true},
			{Name: "go.memory.allocated", Unit: "By", Value: v["/gc/heap/allocs:bytes"], Sum: true, Mono: true},
			{Name: "go.config.gogc", Unit: "%", Value: v["/gc/gogc:percent"], Sum: true},
			{Name: "go.processor.limit", Unit: "{thread}", Value: v["/sched/gomaxprocs:threads"], Sum: true},
			{Name: "go.memory.gc.cycles", Unit: "{gc_cycle}", Value: v["/gc/cycles/total:gc-cycles"], Sum: true, Mono: true},
		}
		if err := exporter.Metrics(res, time.Now(), start, points); err != nil {
			fmt.Fprintf(os.Stdout, "otlp: %v\n", err)
		}
	}
}
