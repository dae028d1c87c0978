package detector

// series is the state of one input series. All fields are guarded by the
// lock of the shard that holds the series.
type series struct {
	hash   uint64
	next   *series // hash-collision chain
	tenant string
	labels Labels

	// ring holds the last len(ring) values; head is the index of the oldest.
	ring  []float64
	head  int32
	count int32 // values in ring, up to len(ring)

	seq          uint32 // bumped on every accepted sample; detects stale predictions
	pending      bool   // queued for inference
	predValid    bool   // pred is the prediction for the next sample
	lastTs       int64  // newest sample timestamp (ms)
	lastSeenUnix int64  // wall clock of the last sample (s), for expiry
	enqueuedNano int64  // wall clock when queued for inference

	// prediction for the next sample, denormalised, and the scale used.
	pred      float64
	predScale float64

	cal calibration

	// latest result
	value, score, expected, lower, upper float64
	scoredTs                             int64

	// open anomaly
	anomalyID   uint64
	openedAt    int64
	lastAboveTs int64
	peak        float64

	hist     []historyPoint
	histHead int32
	histLen  int32
}

// historyPoint is one past result kept for the API.
type historyPoint struct {
	ts                           int64
	value, expected, half, score float32
}

// window copies the ring in time order into dst.
func (s *series) window(dst []float64) []float64 {
	dst = dst[:0]
	n := int32(len(s.ring))
	for i := int32(0); i < s.count; i++ {
		dst = append(dst, s.ring[(s.head+i)%n])
	}
	return dst
}

func (s *series) push(v float64) {
	n := int32(len(s.ring))
	if s.count < n {
		s.ring[(s.head+s.count)%n] = v
		s.count++
		return
	}
	s.ring[s.head] = v
	s.head = (s.head + 1) % n
}

func (s *series) reset() {
	s.head, s.count = 0, 0
	s.predValid = false
}

func (s *series) record(p historyPoint) {
	if len(s.hist) == 0 {
		return
	}
	n := int32(len(s.hist))
	if s.histLen < n {
		s.hist[(s.histHead+s.histLen)%n] = p
		s.histLen++
		return
	}
	s.hist[s.histHead] = p
	s.histHead = (s.histHead + 1) % n
}
