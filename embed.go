// Package relayroot carries files kept at the top of the repository into the
// binary: the example configuration is also the built-in default, so the
// relay runs without any file and the two can never differ.
package relayroot

import _ "embed"

// ExampleConfig is config.toml.example.
//
//go:embed config.toml.example
var ExampleConfig []byte
