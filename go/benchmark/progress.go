package benchmark

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// isTerminal reports whether f is a terminal (a character device).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progress draws a one-line bar on a terminal:
//
//	[#########...........]  23/60  ycsb-a on purego  0.1s/0.25s
//
// redrawn every 100 ms until done. A nil *progress draws nothing.
type progress struct {
	w     io.Writer
	total int
	mu    sync.Mutex
	done  int
	label string
	start time.Time
	d     time.Duration
	quit  chan struct{}
	wg    sync.WaitGroup
}

func newProgress(w io.Writer, total int) *progress {
	p := &progress{w: w, total: total, quit: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.quit:
				return
			case <-t.C:
				p.draw()
			}
		}
	}()
	return p
}

// started is called when a suite's timed phase starts.
func (p *progress) started(suite, engine string, at time.Time, d time.Duration) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.label, p.start, p.d = suite+" on "+engine, at, d
	p.mu.Unlock()
}

// finished counts one suite run done.
func (p *progress) finished() {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.done++
	p.label = ""
	p.mu.Unlock()
}

func (p *progress) draw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	const width = 30
	frac := float64(p.done) / float64(max(p.total, 1))
	if p.label != "" && p.d > 0 {
		in := min(float64(time.Since(p.start))/float64(p.d), 1)
		frac += in / float64(max(p.total, 1))
	}
	n := min(int(frac*width), width)
	line := fmt.Sprintf("[%s%s] %3d/%d", strings.Repeat("#", n), strings.Repeat(".", width-n), p.done, p.total)
	if p.label != "" {
		line += fmt.Sprintf("  %s  %.1fs/%.1fs", p.label, time.Since(p.start).Seconds(), p.d.Seconds())
	}
	fmt.Fprintf(p.w, "\r%s\x1b[K", line)
}

// stop erases the bar.
func (p *progress) stop() {
	if p == nil {
		return
	}
	close(p.quit)
	p.wg.Wait()
	fmt.Fprint(p.w, "\r\x1b[K")
}
