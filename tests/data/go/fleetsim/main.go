// fleetsim: one Go process behaving like a fleet member in a known state, for detection tests.
//
// Modes: storm (a live heap plus allocation churn; run it with GOGC=off GOMEMLIMIT=... or GOGC=1),
// steady (light allocation, a handful of goroutines), leak (goroutines blocked forever, each holding
// memory, so both the goroutine count and the live heap climb), busy (bursts of short-lived goroutines and
// garbage, with a flat floor). Every 100 ms it prints one metrics line to stdout:
//
//	ts_ns=<unix ns> start_ns=<unix ns> goroutines=<n> memlimit=<bytes> gogc=<percent>
//
// Stdlib only.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"
)

type node struct {
	next *node
	val  [6]int64
}

var (
	sink     atomic.Value
	liveList *node
	blobs    [][]byte
)

// churn allocates short-lived garbage, sleeping `pause` after every `every` allocations (0: never).
func churn(stop <-chan struct{}, every int, pause time.Duration) {
	var local [][]byte
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		b := make([]byte, 512<<uint(i%7))
		local = append(local, b)
		if len(local) > 64 {
			local = local[:0]
		}
		if i%16 == 0 {
			sink.Store(&node{})
		}
		if every > 0 && i%every == 0 {
			time.Sleep(pause)
		}
	}
}

func buildLive(mb int) {
	for i := 0; i < (mb<<19)/4096; i++ {
		blobs = append(blobs, make([]byte, 4096))
	}
	for i := 0; i < (mb<<19)/64; i++ {
		liveList = &node{next: liveList}
	}
}

// gogcFromEnv reads GOGC the way the runtime does (debug.SetGCPercent would itself start a GC cycle).
func gogcFromEnv() int {
	v := os.Getenv("GOGC")
	if v == "" {
		return 100
	}
	if v == "off" {
		return -1
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 100
	}
	return n
}

func main() {
	mode := flag.String("mode", "steady", "storm, steady, leak or busy")
	dur := flag.Duration("dur", 8*time.Second, "how long to run")
	live := flag.Int("live", 48, "storm: live heap to retain, MiB")
	flag.Parse()
	start := time.Now()
	memlimit := debug.SetMemoryLimit(-1)
	gogc := gogcFromEnv()

	stop := make(chan struct{})
	never := make(chan struct{})
	switch *mode {
	case "storm":
		buildLive(*live)
		for w := 0; w < 2; w++ {
			go churn(stop, 0, 0)
		}
	case "steady":
		go churn(stop, 4, 5*time.Millisecond)
	case "leak":
		go churn(stop, 16, time.Millisecond)
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				go func(held []byte) { <-never; runtime.KeepAlive(held) }(make([]byte, 64<<10))
			}
		}()
	case "busy":
		go churn(stop, 16, time.Millisecond)
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(600 * time.Millisecond):
				}
				for i := 0; i < 200; i++ {
					go func() { time.Sleep(300 * time.Millisecond) }()
				}
			}
		}()
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", *mode)
		os.Exit(2)
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(*dur)
	for {
		select {
		case <-deadline:
			close(stop)
			runtime.KeepAlive(liveList)
			runtime.KeepAlive(blobs)
			return
		case now := <-tick.C:
			fmt.Printf("ts_ns=%d start_ns=%d goroutines=%d memlimit=%d gogc=%d\n",
				now.UnixNano(), start.UnixNano(), runtime.NumGoroutine(), memlimit, gogc)
		}
	}
}
