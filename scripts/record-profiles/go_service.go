// A small Go program that does the work of a typical web service (JSON, hashing, sorting,
// compression, regular expressions, string building) and records its own CPU and heap
// profiles with the Go runtime's profiler. Its profiles are the project's own, shipped in the
// binary as `emberscope loadgen`'s default mix (scripts/record_loadgen_profiles.sh runs it).
//
//	go run go_service.go -seconds 6 -cpu go-cpu.pb.gz -heap go-heap.pb.gz
package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"time"
)

type order struct {
	ID       int               `json:"id"`
	Customer string            `json:"customer"`
	Items    []item            `json:"items"`
	Tags     map[string]string `json:"tags"`
}

type item struct {
	SKU      string  `json:"sku"`
	Quantity int     `json:"quantity"`
	Price    float64 `json:"price"`
}

var retained [][]byte

func makeOrders(n int) []order {
	orders := make([]order, n)
	for i := range orders {
		items := make([]item, 1+i%7)
		for j := range items {
			items[j] = item{SKU: fmt.Sprintf("sku-%05d", (i*31+j)%20000), Quantity: 1 + j, Price: float64(i%97) + 0.99}
		}
		orders[i] = order{ID: i, Customer: fmt.Sprintf("customer-%d", i%1000), Items: items,
			Tags: map[string]string{"region": []string{"eu", "us", "ap"}[i%3], "channel": "web"}}
	}
	return orders
}

func encodeOrders(orders []order) []byte {
	body, err := json.Marshal(orders)
	if err != nil {
		panic(err)
	}
	return body
}

func decodeOrders(body []byte) []order {
	var orders []order
	if err := json.Unmarshal(body, &orders); err != nil {
		panic(err)
	}
	return orders
}

func checksum(body []byte) [32]byte {
	return sha256.Sum256(body)
}

func compress(body []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(body)
	w.Close()
	return buf.Bytes()
}

var skuPattern = regexp.MustCompile(`sku-0*(\d+)7\b`)

func matchSKUs(orders []order) int {
	matches := 0
	for _, o := range orders {
		for _, it := range o.Items {
			if skuPattern.MatchString(it.SKU) {
				matches++
			}
		}
	}
	return matches
}

func rankCustomers(orders []order) []string {
	totals := map[string]float64{}
	for _, o := range orders {
		for _, it := range o.Items {
			totals[o.Customer] += float64(it.Quantity) * it.Price
		}
	}
	names := make([]string, 0, len(totals))
	for name := range totals {
		names = append(names, name)
	}
	sort.Slice(names, func(a, b int) bool { return totals[names[a]] > totals[names[b]] })
	return names
}

func renderReport(names []string) string {
	var b strings.Builder
	for i, name := range names {
		fmt.Fprintf(&b, "%d. %s\n", i+1, strings.ToUpper(name))
	}
	return b.String()
}

func handleRequest(n int) int {
	orders := makeOrders(n)
	body := encodeOrders(orders)
	decoded := decodeOrders(body)
	sum := checksum(body)
	packed := compress(body)
	report := renderReport(rankCustomers(decoded))
	if n%3 == 0 {
		// A cache that keeps some responses: what the heap profile shows in use.
		retained = append(retained, packed)
		if len(retained) > 64 {
			retained = retained[1:]
		}
	}
	return matchSKUs(decoded) + int(sum[0]) + len(report)
}

func main() {
	seconds := flag.Int("seconds", 6, "how long to work")
	cpuPath := flag.String("cpu", "go-cpu.pb.gz", "CPU profile output")
	heapPath := flag.String("heap", "go-heap.pb.gz", "heap profile output")
	flag.Parse()
	runtime.MemProfileRate = 64 * 1024
	cpuFile, err := os.Create(*cpuPath)
	if err != nil {
		panic(err)
	}
	if err := pprof.StartCPUProfile(cpuFile); err != nil {
		panic(err)
	}
	deadline := time.Now().Add(time.Duration(*seconds) * time.Second)
	total := 0
	for i := 0; time.Now().Before(deadline); i++ {
		total += handleRequest(200 + i%400)
	}
	pprof.StopCPUProfile()
	cpuFile.Close()
	runtime.GC()
	heapFile, err := os.Create(*heapPath)
	if err != nil {
		panic(err)
	}
	if err := pprof.WriteHeapProfile(heapFile); err != nil {
		panic(err)
	}
	heapFile.Close()
	fmt.Println(total)
}
