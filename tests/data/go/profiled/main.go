// profiled: a Go service serving net/http/pprof in one known state, for the profile detections.
//
// Usage: profiled -mode leak|blocked|pool|allocstorm [-addr 127.0.0.1:0] [-period 4s]
// It prints "listening ADDR" on stdout once /debug/pprof answers, then runs until killed.
//
//	leak        a goroutine leak at a known site (fetchAll's goroutine), growing 10 a second; the channels
//	            stay reachable, so only the growing count proves it (the goroutineleak profile cannot)
//	blocked     20 goroutines blocked forever on channels nobody else holds: a constant count that only the
//	            goroutineleak profile (Go 1.26+) proves
//	pool        a worker pool whose size follows a periodic load up and down (5..45 workers): not a leak.
//	            Each period is a burst then an idle half at 5 workers, so every scrape spaced under half a
//	            period sees the trough (a sine without the idle half aliases against the scrape interval:
//	            its sampled floors drift up and down with the phase, which looks like growth)
//	allocstorm  a GC storm driven by buildReport, among two lighter allocators (run with GODEBUG=gctrace=1)
//
// Lines marked "SITE:" are what the tests expect the detections to name. Stdlib only; builds with Go 1.19.
package main

import (
	"flag"
	"fmt"
	"math"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime"
	"sync"
	"time"
)

var (
	mu   sync.Mutex
	held []chan int // keeps the leaked goroutines' channels reachable
	live *node
)

type node struct {
	next *node
	val  [6]int64
}

//go:noinline
func fetchAll() {
	ch := make(chan int)
	mu.Lock()
	held = append(held, ch)
	mu.Unlock()
	go func() {
		ch <- 1 // SITE:leak
	}()
}

func leak() {
	for {
		fetchAll()
		time.Sleep(100 * time.Millisecond)
	}
}

//go:noinline
func startWatchers(n int) {
	for i := 0; i < n; i++ {
		go watch(make(chan int))
	}
}

func watch(ch chan int) {
	<-ch // SITE:blocked
}

func worker(jobs <-chan int, quit <-chan struct{}) {
	for {
		select { // SITE:pool
		case j := <-jobs:
			_ = j * j
		case <-quit:
			return
		}
	}
}

func pool(period time.Duration) {
	jobs := make(chan int)
	var quits []chan struct{}
	start := time.Now()
	go func() {
		for i := 0; ; i++ {
			jobs <- i
			time.Sleep(time.Millisecond)
		}
	}()
	for {
		phase := time.Since(start).Seconds() / period.Seconds()
		target := 5 + int(40*math.Max(0, math.Sin(2*math.Pi*phase)))
		for len(quits) < target {
			q := make(chan struct{})
			quits = append(quits, q)
			go worker(jobs, q)
		}
		for len(quits) > target {
			close(quits[len(quits)-1])
			quits = quits[:len(quits)-1]
		}
		time.Sleep(20 * time.Millisecond)
	}
}

//go:noinline
func buildReport(n int) []byte {
	return make([]byte, n) // SITE:storm
}

//go:noinline
func encode(n int) []byte {
	return make([]byte, n)
}

//go:noinline
func logLine() []byte {
	return make([]byte, 256)
}

func allocstorm() {
	// A pointer-dense live heap (16 MiB of small nodes) the collector must mark every cycle.
	for i := 0; i < (16<<20)/64; i++ {
		live = &node{next: live}
	}
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var keep []byte
			for i := 0; ; i++ {
				keep = buildReport(32 << 10) // the storm: 32 KiB each call
				if i%8 == 0 {
					keep = encode(16 << 10) // 2 KiB per buildReport call on average
				}
				if i%32 == 0 {
					keep = logLine()
				}
				_ = keep
			}
		}(w)
	}
	wg.Wait()
}

func main() {
	mode := flag.String("mode", "leak", "leak, blocked, pool or allocstorm")
	addr := flag.String("addr", "127.0.0.1:0", "where /debug/pprof listens")
	period := flag.Duration("period", 4*time.Second, "pool: load period")
	flag.Parse()
	runtime.MemProfileRate = 64 << 10
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go func() { _ = http.Serve(ln, nil) }()
	fmt.Printf("listening %s\n", ln.Addr())
	switch *mode {
	case "leak":
		leak()
	case "blocked":
		startWatchers(20)
		select {}
	case "pool":
		pool(*period)
	case "allocstorm":
		allocstorm()
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", *mode)
		os.Exit(2)
	}
}
