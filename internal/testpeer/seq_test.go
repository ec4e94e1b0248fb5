package testpeer

import "testing"

func TestCheckOrder(t *testing.T) {
	seqs := func(ns ...int) []string {
		out := make([]string, len(ns))
		for i, n := range ns {
			out[i] = SeqMessage("r", n)
		}
		return out
	}
	tests := []struct {
		name    string
		msgs    []string
		ok      bool
		replays int
	}{
		{"in order", seqs(0, 1, 2, 3), true, 0},
		{"gaps", seqs(0, 1, 3, 7), true, 0},
		{"replay of a suffix", seqs(0, 1, 2, 3, 4, 2, 3, 4, 5, 6), true, 1},
		{"replay of the last one", seqs(0, 1, 2, 2, 3), true, 1},
		{"replay cut by another", seqs(0, 1, 2, 3, 4, 5, 3, 4, 2, 3, 4, 5, 6), true, 2},
		{"other runs ignored", append(seqs(0, 1), SeqMessage("x", 0), SeqMessage("r", 2)), true, 0},
		{"new one late", seqs(0, 1, 2, 4, 3), false, 0},
		{"replay skips one", seqs(0, 1, 2, 3, 4, 5, 3, 5, 6), false, 1},
		{"new one inside a replay", seqs(0, 1, 2, 3, 4, 5, 3, 6), false, 1},
		{"a repeat without a step back", seqs(0, 1, 2, 3, 1, 3), false, 1},
	}
	for _, tt := range tests {
		o := CheckOrder("r", tt.msgs)
		if o.Ok() != tt.ok || o.Replays != tt.replays {
			t.Errorf("%s: %v; want ok %v, %d replays", tt.name, o, tt.ok, tt.replays)
		}
	}
}
