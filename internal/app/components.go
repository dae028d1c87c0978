package app

import (
	"context"
	"net/http"
	"sync"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

// component is an optional part of the server (an output, an input, the
// API). Each lives in its own file of this package and registers itself from
// an init function, so adding one does not touch the wiring of the others.
type component struct {
	name string
	// build creates the component from a.cfg; it may add event sinks,
	// label enrichers and HTTP routes. It returns the component's run loop
	// (nil if it has none) which must return when ctx is done.
	build func(a *App, mux *http.ServeMux) (run func(ctx context.Context) error, err error)
}

var components []component

func register(c component) { components = append(components, c) }

// eventFanout passes detector events to every sink added before Run.
type eventFanout struct {
	mu    sync.RWMutex
	sinks []detector.EventSink
}

func (f *eventFanout) add(s detector.EventSink) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sinks = append(f.sinks, s)
}

func (f *eventFanout) HandleEvents(evs []detector.Event) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, s := range f.sinks {
		s.HandleEvents(evs)
	}
}

// enricherChain applies every label enricher added before Run.
type enricherChain struct {
	mu        sync.RWMutex
	enrichers []interface {
		Enrich(tenant string, lbls detector.Labels, add func(name, value string))
	}
}

func (c *enricherChain) add(e interface {
	Enrich(tenant string, lbls detector.Labels, add func(name, value string))
}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.enrichers = append(c.enrichers, e)
}

func (c *enricherChain) Enrich(tenant string, lbls detector.Labels, add func(name, value string)) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, e := range c.enrichers {
		e.Enrich(tenant, lbls, add)
	}
}
