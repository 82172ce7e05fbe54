// A Go gRPC backend for scripts/bench, so that the backend is not the bottleneck (issue 7).
//
// It replays the demo backend's answers for the benchmark's requests. scripts/bench_suite.py starts
// the Python demo backend (python -m edgedemo.serve), sends it the benchmark's requests once (GET
// ListBooks for shelves/scifi with pageSize 2 and genre SCIENCE_FICTION; POST CreateBook with the
// bench body and requestId bench-post; the gateway's grpc.health.v1 Check) and writes the serialized
// replies to a JSON file: {"/edgedemo.library.v1.LibraryService/ListBooks": "<base64>", ...}. This
// server loads that file and answers every unary call of a listed method with its bytes, whatever
// the request says, so a call costs tens of microseconds instead of the demo's ~300. Any other
// method gets UNIMPLEMENTED. It has none of the demo's behaviour beyond that: no state, no
// validation, no x-demo-delay-ms or x-demo-fail knobs (the batch-latency run keeps the Python
// backend for its per-item sleeps). Like the demo, it answers with header metadata
// x-demo-server: edgedemo and x-demo-call: <n> (the n-th call of that method), so Envoy, which
// passes backend headers through, sends the same HTTP headers as with the demo.
//
// Standard library plus grpc-go only, no generated code: a codec named "proto" that passes bytes
// through replaces the protobuf one, and every method goes to the unknown-service handler. Built by
// bench_suite.py in GOPATH mode against Debian's golang-google-grpc-dev (no module proxy needed):
//
//	GO111MODULE=off GOPATH=<tmp>:/usr/share/gocode go build -o <bin> .   (source in <tmp>/src/<name>/)
//
// Usage: bench_backend -port 50051 -replies replies.json
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io/ioutil"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// rawCodec hands message bytes through untouched: requests are read and dropped, replies are canned.
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("bench_backend: cannot marshal %T", v)
	}
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("bench_backend: cannot unmarshal into %T", v)
	}
	*b = data
	return nil
}

func (rawCodec) Name() string { return "proto" }

type reply struct {
	body  []byte
	calls int64
}

func main() {
	host := flag.String("host", "127.0.0.1", "address to listen on")
	port := flag.Int("port", 50051, "port to listen on")
	repliesFile := flag.String("replies", "", `JSON object: full method name ("/pkg.Service/Method") -> base64 of the serialized reply`)
	flag.Parse()
	if *repliesFile == "" {
		log.Fatal("bench_backend: -replies is required")
	}
	text, err := ioutil.ReadFile(*repliesFile)
	if err != nil {
		log.Fatalf("bench_backend: %v", err)
	}
	var table map[string][]byte // encoding/json decodes base64 strings into []byte
	if err := json.Unmarshal(text, &table); err != nil {
		log.Fatalf("bench_backend: %s: %v", *repliesFile, err)
	}
	replies := make(map[string]*reply, len(table))
	for method, body := range table {
		replies[method] = &reply{body: body}
	}

	encoding.RegisterCodec(rawCodec{})
	server := grpc.NewServer(grpc.UnknownServiceHandler(func(_ interface{}, stream grpc.ServerStream) error {
		method, _ := grpc.MethodFromServerStream(stream)
		r, ok := replies[method]
		if !ok {
			return status.Errorf(codes.Unimplemented, "bench_backend: no canned reply for %s", method)
		}
		var request []byte
		if err := stream.RecvMsg(&request); err != nil {
			return err
		}
		n := atomic.AddInt64(&r.calls, 1)
		if err := stream.SetHeader(metadata.Pairs("x-demo-server", "edgedemo", "x-demo-call", strconv.FormatInt(n, 10))); err != nil {
			return err
		}
		body := r.body
		return stream.SendMsg(&body)
	}))

	listener, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		log.Fatalf("bench_backend: %v", err)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-stop
		server.Stop()
	}()
	fmt.Printf("bench_backend: %d canned methods on %s\n", len(replies), listener.Addr())
	if err := server.Serve(listener); err != nil {
		log.Fatalf("bench_backend: %v", err)
	}
}
