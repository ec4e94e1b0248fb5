package relay

import (
	"fmt"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/testpeer"
)

// BenchmarkDeliverySoloVsBlackholed measures how fast one TCP output
// delivers, alone and next to a second output whose upstream accepts the
// connection and never reads. The dual-destination promise is that the
// second number stays within 10% of the first. Compare the msgs/s metrics:
//
//	go test -run='^$' -bench=DeliverySoloVsBlackholed -benchtime=200000x ./relay/
func BenchmarkDeliverySoloVsBlackholed(b *testing.B) {
	for _, withDead := range []bool{false, true} {
		name := "solo"
		if withDead {
			name = "beside-blackholed"
		}
		b.Run(name, func(b *testing.B) {
			good := testpeer.NewReceiver(b, "127.0.0.1:0")
			cfg := `data_dir = "{{DATA}}"` + listenersTOML() + tcpOutputTOML("good", good.Addr())
			outputsList := `["good"]`
			if withDead {
				dead := testpeer.NewBlackhole(b, "127.0.0.1:0")
				cfg += tcpOutputTOML("dead", dead.Addr())
				outputsList = `["good", "dead"]`
			}
			cfg += fmt.Sprintf("[[route]]\nname = \"all\"\noutputs = %s\n", outputsList)
			r := startRelay(b, b.TempDir(), cfg)
			b.ResetTimer()
			start := time.Now()
			if err := testpeer.SendTCP(r.addr("tcp"), "bench", 0, b.N, true); err != nil {
				b.Fatal(err)
			}
			if !testpeer.WaitFor(5*time.Minute, func() bool { return good.Count() >= b.N }) {
				b.Fatalf("delivered %d of %d", good.Count(), b.N)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}
