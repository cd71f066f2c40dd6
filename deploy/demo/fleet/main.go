// Command fleetdemo is one instance of a small Go fleet for the Fleetwatch demo. Each -scenario shows one
// of the failures Fleetwatch finds, or none:
//
//	storm     allocation storm under a tiny GOGC: GC runs back to back
//	leak      goroutines blocked forever on a channel, a few every second
//	nocancel  a gateway calls orders with a deadline; the orders handler ignores the cancellation
//	healthy   the same call pattern to payments, whose handler stops when its context is cancelled
//
// It ships everything over OTLP/HTTP JSON: its own GODEBUG=gctrace=1 stderr lines as log records (the
// process re-executes itself with gctrace on and reads the child's stderr), Go runtime metrics from
// runtime/metrics every second, and spans with cancel-event span events. Standard library only.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"fleetdemo/otlp"
)

type config struct {
	scenario string
	endpoint string
	service  string
	instance string
	duration time.Duration
	interval time.Duration
}

// defaultServices names the instance's own service per scenario (the one whose runtime it reports).
var defaultServices = map[string]string{"storm": "search", "leak": "sessions", "nocancel": "orders", "healthy": "payments"}

func main() {
	var cfg config
	flag.StringVar(&cfg.scenario, "scenario", "healthy", "storm | leak | nocancel | healthy")
	flag.StringVar(&cfg.endpoint, "endpoint", "http://127.0.0.1:4318", "OTLP/HTTP base URL")
	flag.StringVar(&cfg.service, "service", "", "service name (default depends on the scenario)")
	flag.StringVar(&cfg.instance, "instance", "", "instance id (default <service>-1)")
	flag.DurationVar(&cfg.duration, "duration", 0, "stop after this long (0: run until SIGTERM)")
	flag.DurationVar(&cfg.interval, "interval", time.Second, "how often logs, spans and metrics are sent")
	flag.Parse()
	if _, ok := defaultServices[cfg.scenario]; !ok {
		fmt.Fprintf(os.Stderr, "unknown -scenario %q\n", cfg.scenario)
		os.Exit(2)
	}
	if cfg.service == "" {
		cfg.service = defaultServices[cfg.scenario]
	}
	if cfg.instance == "" {
		cfg.instance = cfg.service + "-1"
	}
	if os.Getenv("FLEETDEMO_CHILD") == "" {
		os.Exit(launch(cfg))
	}
	os.Exit(runChild(cfg))
}

// launch re-executes this program with GODEBUG=gctrace=1 and ships each line the child writes to stderr
// as an OTLP log record; the runtime writes gctrace to fd 2 and nothing else can capture it in-process.
func launch(cfg config) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), "GODEBUG=gctrace=1", "FLEETDEMO_CHILD=1")
	cmd.Stdout = os.Stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		for sig := range signals {
			_ = cmd.Process.Signal(sig)
		}
	}()
	exporter := otlp.NewExporter(cfg.endpoint, cfg.interval)
	res := otlp.Resource{Service: cfg.service, Instance: cfg.instance}
	scanner := bufio.NewScanner(stderr)
	scanner.Buffer(make([]byte, 64<<10), 1<<20)
	for scanner.Scan() {
		exporter.Log(res, time.Now(), scanner.Text())
	}
	err = cmd.Wait()
	exporter.Close()
	if exitErr, ok := err.(*exec.ExitError); ok {
		return exitErr.ExitCode()
	}
	return 0
}

func runChild(cfg config) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if cfg.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.duration)
		defer cancel()
	}
	exporter := otlp.NewExporter(cfg.endpoint, cfg.interval)
	res := otlp.Resource{Service: cfg.service, Instance: cfg.instance}
	go reportRuntime(ctx, exporter, res, cfg.interval)
	switch cfg.scenario {
	case "storm":
		storm(ctx)
	case "leak":
		leak(ctx)
	case "nocancel":
		calls(ctx, exporter, callPattern{caller: "gateway", callee: cfg.service, route: "GET /checkout",
			operation: "orders.Place", dbStatement: "INSERT orders", honorsCancel: false}, cfg.instance)
	case "healthy":
		calls(ctx, exporter, callPattern{caller: "storefront", callee: cfg.service, route: "GET /pay",
			operation: "payments.Charge", dbStatement: "SELECT balance", honorsCancel: true}, cfg.instance)
	}
	exporter.Close()
	return 0
}
