package runtime

import "testing"

func TestHeapFloorPercent(t *testing.T) {
	h := &heapTuner{floor: 64 << 20, base: 100}
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, 6400},        // at the cap
		{1 << 20, 6300},  // 1 + 63 = 64 MiB
		{4 << 20, 1500},  // 4 × 16 = 64 MiB
		{16 << 20, 300},  // 16 × 4 = 64 MiB
		{32 << 20, 100},  // twice the live heap reaches the floor: GOGC as set
		{500 << 20, 100}, // far above: untouched
	} {
		if got := h.percentFor(c.live); got != c.want {
			t.Errorf("live %d MiB: GOGC %d, want %d", c.live>>20, got, c.want)
		}
		if target := c.live + c.live*uint64(h.percentFor(c.live))/100; c.live >= 1<<20 && c.live < 32<<20 && (target < 63<<20 || target > 65<<20) {
			t.Errorf("live %d MiB: next collection at %d MiB, want the 64 MiB floor", c.live>>20, target>>20)
		}
	}
}
