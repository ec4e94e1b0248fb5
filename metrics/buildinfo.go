package metrics

import "github.com/prometheus/client_golang/prometheus"

// BuildInfo describes the running binary.
type BuildInfo struct {
	Version   string // the release, or a VCS-derived version for a development build
	Revision  string // the VCS commit it was built from
	GoVersion string // the Go toolchain that built it
}

// RegisterBuildInfo exports relay_build_info{version,revision,goversion} 1
// on reg, the usual way to tell in Prometheus which build runs where.
func RegisterBuildInfo(reg prometheus.Registerer, bi BuildInfo) error {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help: "Always 1; the labels say which build of relay runs: version, VCS revision and Go version.",
	}, []string{"version", "revision", "goversion"})
	g.WithLabelValues(bi.Version, bi.Revision, bi.GoVersion).Set(1)
	return reg.Register(g)
}
