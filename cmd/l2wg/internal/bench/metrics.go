package main

import (
	"fmt"
	"math"
)

// metric names one number measured per contestant and repetition.
type metric int

const (
	mTCP1 metric = iota
	mTCP4
	mUDP
	mUDPLoss
	mPPS64
	mPPS512
	mRTTIdleMean
	mRTTIdleP99
	mRTTIdleP10
	mRTTIdleP50
	mRTTIdleP90
	mRTTLoadMean
	mRTTLoadP99
	mCPUPerGB
	mRSSTCP
	mRSSAll
	mRSSIdle50
	mFirstFrame
	numMetrics
)

// metricInfo says how a metric reads in the report.
type metricInfo struct {
	Label    string
	Decimals int
	// HigherIsBetter tells which way the l2wg / baseline ratio should go.
	HigherIsBetter bool
	// NoRatio leaves the metric out of the ratio table (a loss of 0 % has
	// no meaningful ratio).
	NoRatio bool
}

// metricInfos is indexed by metric; labels are filled in by metricTable,
// which knows the test parameters.
var metricInfos = [numMetrics]metricInfo{
	mTCP1:        {Decimals: 0, HigherIsBetter: true},
	mTCP4:        {Decimals: 0, HigherIsBetter: true},
	mUDP:         {Decimals: 0, HigherIsBetter: true},
	mUDPLoss:     {Decimals: 1, NoRatio: true},
	mPPS64:       {Decimals: 1, HigherIsBetter: true},
	mPPS512:      {Decimals: 1, HigherIsBetter: true},
	mRTTIdleMean: {Decimals: 3},
	mRTTIdleP99:  {Decimals: 3},
	mRTTIdleP10:  {Decimals: 3},
	mRTTIdleP50:  {Decimals: 3},
	mRTTIdleP90:  {Decimals: 3},
	mRTTLoadMean: {Decimals: 3},
	mRTTLoadP99:  {Decimals: 3},
	mCPUPerGB:    {Decimals: 2},
	mRSSTCP:      {Decimals: 1},
	mRSSAll:      {Decimals: 1},
	mRSSIdle50:   {Decimals: 1, NoRatio: true},
	mFirstFrame:  {Decimals: 1},
}

// metricLabels returns the report's label of every metric for a run with
// these parameters.
func metricLabels(udpRate string) [numMetrics]string {
	return [numMetrics]string{
		mTCP1:        "TCP, 1 stream (Mbit/s)",
		mTCP4:        "TCP, 4 streams (Mbit/s)",
		mUDP:         fmt.Sprintf("UDP, full-size datagrams (1472 bytes VM to VM) at %s offered: delivered (Mbit/s)", rateName(udpRate)),
		mUDPLoss:     "UDP loss (%)",
		mPPS64:       fmt.Sprintf("UDP, %d-byte datagrams at %s offered: delivered (kpps)", smallUDP, rateName(udpRate)),
		mPPS512:      fmt.Sprintf("UDP, %d-byte datagrams at %s offered: delivered (kpps)", mediumUDP, rateName(udpRate)),
		mRTTIdleMean: "ping RTT idle, mean (ms)",
		mRTTIdleP99:  "ping RTT idle, p99 (ms)",
		mRTTIdleP10:  "ping RTT idle, p10 (ms)",
		mRTTIdleP50:  "ping RTT idle, median (ms)",
		mRTTIdleP90:  "ping RTT idle, p90 (ms)",
		mRTTLoadMean: "ping RTT under load (TCP 4 streams), mean (ms)",
		mRTTLoadP99:  "ping RTT under load (TCP 4 streams), p99 (ms)",
		mCPUPerGB:    "VPN CPU per GB delivered, TCP 1 stream (CPU s/GB)",
		mRSSTCP:      "peak RSS of one VPN process, after the TCP tests (MB)",
		mRSSAll:      "peak RSS of one VPN process, after all tests (MB)",
		mRSSIdle50:   fmt.Sprintf("peak RSS of one l2wg with %d configured peers, idle (MB)", idlePeers),
		mFirstFrame:  "first frame across after start (s)",
	}
}

// rateName spells iperf3's -b: 0 is no limit.
func rateName(rate string) string {
	if rate == "0" {
		return "unlimited rate"
	}
	return rate
}

// sample is what one repetition of one contestant measured.
type sample struct {
	// Err is set when the contestant did not come up or failed its check:
	// then it has no values.
	Err error
	// Problems are the tests that failed while the contestant worked.
	Problems []string
	// Values holds NaN where a test failed.
	Values [numMetrics]float64
}

// newSample returns a sample with every value unknown.
func newSample() *sample {
	s := &sample{}
	for i := range s.Values {
		s.Values[i] = math.NaN()
	}
	return s
}

// problem records a test that failed.
func (s *sample) problem(test string, err error) {
	s.Problems = append(s.Problems, fmt.Sprintf("%s: %v", test, err))
}
