package runtime

import "testing"

func TestHeapFloorPercent(t *testing.T) {
	h := &heapTuner{floor: 64 << 20, base: 100}
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, 1600},        // Go's minimum heap (4 MiB × 16) is the floor
		{1 << 20, 1600},  // likewise
		{4 << 20, 1500},  // 4 × 16 = 64 MiB
		{16 << 20, 300},  // 16 × 4 = 64 MiB
		{32 << 20, 100},  // twice the live heap reaches the floor: GOGC as set
		{500 << 20, 100}, // far above: untouched
	} {
		p := h.percentFor(c.live)
		if p != c.want {
			t.Errorf("live %d MiB: GOGC %d, want %d", c.live>>20, p, c.want)
		}
		// The next collection: at the larger of the goal and Go's minimum.
		next := max(c.live+c.live*uint64(p)/100, goMinHeap*uint64(p)/100)
		if next > 65<<20 && c.live < 32<<20 {
			t.Errorf("live %d MiB: next collection at %d MiB, past the 64 MiB floor", c.live>>20, next>>20)
		}
	}
}
