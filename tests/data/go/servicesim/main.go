// servicesim: a small service-shaped Go program whose runtime behaviour is known by construction. The
// backtest recorder (tests/scenarios/record.py) runs it for as long as a detection needs and turns its real
// gctrace (stderr, GODEBUG=gctrace=1) and its runtime readings (stdout) into labelled scenarios.
//
// Every -every (10 s) it prints one line to stdout:
//
//	ts_ns=<unix ns> start_ns=<unix ns> goroutines=<n> memlimit=<bytes> gogc=<percent, -1 = off>
//
// Modes (the trouble, when there is one, starts -onset after the start; until then the service is calm):
//
//	steady        a busy but healthy service: steady traffic, GC every few seconds at low cost
//	surge         calm traffic, then from -onset an unthrottled surge (-workers goroutines allocating
//	              pointer-rich garbage). With GOGC=100 an allocation storm; with a tiny GOGC a
//	              misconfiguration storm; with GOGC=off and a GOMEMLIMIT just above -live a limit squeeze
//	leaksurge     the surge, where every request also keeps -retain KiB it never frees: a leak-driven storm
//	batch         steady traffic with an unthrottled batch of -burst every -period (short, not sustained)
//	goleak        request handlers that give up on a slow backend after a timeout and leave the backend
//	              goroutine blocked forever on its unbuffered reply channel (1 request in -leakevery)
//	heapleak      a session cache without eviction: every -leakevery-th request adds -retain KiB for good
//	periodic      load that rises and falls over -period: goroutines per request fan out, then drain; a
//	              bounded cache fills during the first minutes and then holds its size
//
// Stdlib only, and compatible with Go 1.19 (no min/max builtins, no range over int).
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"time"
)

type node struct {
	next *node
	val  [6]int64
}

var (
	live     []*node
	retained [][]*node
	mu       sync.Mutex
	sinkMu   sync.Mutex
	sink     *node
)

// garbage allocates about `bytes` of short-lived pointer-rich nodes (a linked list nobody keeps).
func garbage(bytes int) {
	var head *node
	for i := 0; i < bytes/64; i++ {
		head = &node{next: head}
	}
	if head != nil && head.val[0] == 42 {
		sinkMu.Lock()
		sink = head
		sinkMu.Unlock()
	}
}

// keep allocates `bytes` of nodes and returns them (the caller decides how long they live).
func keep(bytes int) []*node {
	out := make([]*node, 0, bytes/64)
	for i := 0; i < bytes/64; i++ {
		out = append(out, &node{})
	}
	return out
}

func buildLive(mb int) {
	for i := 0; i < mb; i++ {
		live = append(live, keep(1<<20)...)
	}
}

// traffic makes `rate` requests per second, each allocating `perReq` bytes of garbage, until stop closes.
func traffic(stop <-chan struct{}, rate float64, perReq int) {
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			garbage(perReq)
		}
	}
}

// surge allocates as fast as it can on `workers` goroutines; each chunk of 64 KiB also retains
// `retainKiB` KiB when positive (a leak), until stop closes.
func surge(stop <-chan struct{}, workers int, retainKiB int) {
	for w := 0; w < workers; w++ {
		go func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				garbage(64 << 10)
				if retainKiB > 0 && i%64 == 0 {
					kept := keep(retainKiB << 10)
					mu.Lock()
					retained = append(retained, kept)
					mu.Unlock()
				}
			}
		}()
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

// lcg is a deterministic pseudo-random sequence, so a recording's leak rate does not depend on a seed.
type lcg uint64

func (l *lcg) next() uint64 {
	*l = *l*6364136223846793005 + 1442695040888963407
	return uint64(*l >> 33)
}

func goleak(stop <-chan struct{}, rate float64, leakEvery int) {
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		slow := n%leakEvery == leakEvery-1
		go func() {
			reply := make(chan []byte) // unbuffered: the backend blocks until someone receives
			go func() {
				if slow {
					time.Sleep(120 * time.Millisecond)
				} else {
					time.Sleep(10 * time.Millisecond)
				}
				garbage(16 << 10)
				reply <- make([]byte, 512)
			}()
			select {
			case b := <-reply:
				_ = b
			case <-time.After(80 * time.Millisecond):
				// timed out: return without draining reply, so a slow backend never finishes
			}
			garbage(32 << 10)
		}()
	}
}

func heapleak(stop <-chan struct{}, rate float64, leakEvery int, retainKiB int) {
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	sessions := map[int][]*node{}
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		garbage(48 << 10)
		if n%leakEvery == 0 {
			sessions[n] = keep(retainKiB << 10)
		}
	}
}

func periodic(stop <-chan struct{}, start time.Time, period time.Duration, low, high float64, fanout int) {
	const cacheEntries = 12000
	cache := make(map[int][]*node, cacheEntries)
	var rng lcg = 1
	for n := 0; ; n++ {
		phase := 2 * math.Pi * float64(time.Since(start)) / float64(period)
		rate := low + (high-low)*(1-math.Cos(phase))/2
		select {
		case <-stop:
			return
		case <-time.After(time.Duration(float64(time.Second) / rate)):
		}
		key := int(rng.next() % 40000)
		if _, ok := cache[key]; !ok {
			if len(cache) >= cacheEntries {
				for k := range cache {
					delete(cache, k)
					break
				}
			}
			cache[key] = keep(1 << 10)
		}
		for f := 0; f < fanout; f++ {
			hold := time.Duration(200+rng.next()%600) * time.Millisecond
			go func() {
				garbage(8 << 10)
				time.Sleep(hold)
			}()
		}
	}
}

func main() {
	mode := flag.String("mode", "steady", "see the package comment")
	dur := flag.Duration("dur", 7*time.Minute, "how long to run")
	onset := flag.Duration("onset", 2*time.Minute, "surge, leaksurge: when the trouble starts")
	every := flag.Duration("every", 10*time.Second, "how often to print the runtime readings")
	liveMB := flag.Int("live", 24, "MiB of long-lived pointer-rich data built at start")
	rate := flag.Float64("rate", 20, "requests per second (calm traffic, leak modes)")
	perReq := flag.Int("perreq", 64, "KiB of garbage per calm request")
	workers := flag.Int("workers", 1, "surge: allocating goroutines")
	retain := flag.Int("retain", 64, "leaksurge, heapleak: KiB kept per leaking request")
	leakEvery := flag.Int("leakevery", 60, "goleak, heapleak: one request in this many leaks")
	period := flag.Duration("period", 20*time.Minute, "batch, periodic: the load cycle")
	burst := flag.Duration("burst", 70*time.Second, "batch: how long each batch runs")
	flag.Parse()

	start := time.Now()
	memlimit := debug.SetMemoryLimit(-1)
	gogc := gogcFromEnv()
	buildLive(*liveMB)
	stop := make(chan struct{})

	switch *mode {
	case "steady":
		go traffic(stop, *rate, *perReq<<10)
	case "surge", "leaksurge":
		go traffic(stop, *rate, *perReq<<10)
		retainKiB := 0
		if *mode == "leaksurge" {
			retainKiB = *retain
		}
		go func() {
			select {
			case <-stop:
				return
			case <-time.After(*onset):
			}
			surge(stop, *workers, retainKiB)
		}()
	case "batch":
		go traffic(stop, *rate, *perReq<<10)
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(*period - *burst):
				}
				batch := make(chan struct{})
				surge(batch, *workers, 0)
				select {
				case <-stop:
					close(batch)
					return
				case <-time.After(*burst):
				}
				close(batch)
			}
		}()
	case "goleak":
		go goleak(stop, *rate, *leakEvery)
	case "heapleak":
		go heapleak(stop, *rate, *leakEvery, *retain)
	case "periodic":
		go periodic(stop, start, *period, *rate/10, *rate, 4)
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", *mode)
		os.Exit(2)
	}

	report := func(now time.Time) {
		fmt.Printf("ts_ns=%d start_ns=%d goroutines=%d memlimit=%d gogc=%d\n",
			now.UnixNano(), start.UnixNano(), runtime.NumGoroutine(), memlimit, gogc)
	}
	report(time.Now())
	tick := time.NewTicker(*every)
	defer tick.Stop()
	deadline := time.After(*dur)
	for {
		select {
		case <-deadline:
			close(stop)
			runtime.KeepAlive(live)
			return
		case now := <-tick.C:
			report(now)
		}
	}
}
