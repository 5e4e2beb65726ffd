package mesh

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func sampleRecord() Record {
	return Record{Origin: labKey(7), Seq: 1767225600<<32 | 3, Lifetime: 1200,
		Links: []Link{{5, 10}, {0x01020304, 88}, {0xfffffff0, MaxCost}}}
}

func TestRecordRoundTrip(t *testing.T) {
	r := sampleRecord()
	b, err := AppendRecord(nil, &r)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != headerLen+recordFixedLen+3*linkLen {
		t.Fatalf("%d bytes", len(b))
	}
	m, err := ParseMessage(b)
	if err != nil || m.Type != MsgRecord || !reflect.DeepEqual(m.Record, r) {
		t.Fatalf("got %+v, %v; want %+v", m.Record, err, r)
	}
	s := Summary{First: 0, Last: 0x7fffffff, Entries: []SummaryEntry{{1, 9}, {0x7fffffff, 1 << 40}}}
	b, _ = AppendSummary(nil, &s)
	if m, err := ParseMessage(b); err != nil || !reflect.DeepEqual(m.Summary, s) {
		t.Fatalf("summary: %+v %v", m.Summary, err)
	}
	s.Final, s.Last = true, ^NodeID(0)
	b, _ = AppendSummary(nil, &s)
	if m, err := ParseMessage(b); err != nil || !reflect.DeepEqual(m.Summary, s) {
		t.Fatalf("final summary: %+v %v", m.Summary, err)
	}
	req := []NodeID{1, 2, 0xffffffff}
	b, _ = AppendRequest(nil, req)
	if m, err := ParseMessage(b); err != nil || !reflect.DeepEqual(m.Request, req) {
		t.Fatalf("request: %+v %v", m.Request, err)
	}
}

func TestParseRejects(t *testing.T) {
	good := sampleRecord()
	enc := func(r Record) []byte {
		// encode without the canonical check, to build hostile records
		b := []byte{Version, byte(MsgRecord)}
		b = append(b, r.Origin[:]...)
		b = append(b, byte(r.Seq>>56), byte(r.Seq>>48), byte(r.Seq>>40), byte(r.Seq>>32),
			byte(r.Seq>>24), byte(r.Seq>>16), byte(r.Seq>>8), byte(r.Seq))
		b = append(b, byte(r.Lifetime>>8), byte(r.Lifetime), byte(len(r.Links)>>8), byte(len(r.Links)))
		for _, l := range r.Links {
			b = append(b, byte(l.Neighbour>>24), byte(l.Neighbour>>16), byte(l.Neighbour>>8), byte(l.Neighbour),
				byte(l.Cost>>24), byte(l.Cost>>16), byte(l.Cost>>8), byte(l.Cost))
		}
		return b
	}
	with := func(f func(*Record)) []byte {
		r := sampleRecord()
		r.Links = append([]Link(nil), good.Links...)
		f(&r)
		return enc(r)
	}
	many := make([]Link, MaxRecordLinks+1)
	for i := range many {
		many[i] = Link{NodeID(i + 1), 1}
	}
	for _, c := range []struct {
		name string
		b    []byte
		err  error
	}{
		{"empty", nil, ErrShort},
		{"version", []byte{2, 1}, ErrVersion},
		{"type", []byte{Version, 9}, ErrType},
		{"truncated record", enc(good)[:50], ErrShort},
		{"trailing byte", append(enc(good), 0), ErrTooLong},
		{"links unsorted", with(func(r *Record) { r.Links[0], r.Links[1] = r.Links[1], r.Links[0] }), ErrOrder},
		{"duplicate link", with(func(r *Record) { r.Links[1] = r.Links[0] }), ErrOrder},
		{"cost zero", with(func(r *Record) { r.Links[0].Cost = 0 }), ErrBadLink},
		{"cost too high", with(func(r *Record) { r.Links[2].Cost = MaxCost + 1 }), ErrBadLink},
		{"neighbour zero", with(func(r *Record) { r.Links[0].Neighbour = 0 }), ErrBadLink},
		{"link to itself", with(func(r *Record) { r.Links = []Link{{r.ID(), 1}} }), ErrBadLink},
		{"too many links", with(func(r *Record) { r.Links = many }), ErrTooMany},
		{"count beyond the bytes", func() []byte { b := enc(good); b[headerLen+43] = 200; return b }(), ErrShort},
		{"summary entry out of range", func() []byte {
			b, _ := AppendSummary(nil, &Summary{First: 10, Last: 20, Entries: []SummaryEntry{{15, 1}}})
			b[headerLen+4+3] = 12 // Last = 12
			return b
		}(), ErrBadRange},
		{"summary reversed range", func() []byte {
			b, _ := AppendSummary(nil, &Summary{First: 10, Last: 20})
			b[headerLen+3] = 30
			return b
		}(), ErrLongRange},
		{"summary unknown flag", func() []byte {
			b, _ := AppendSummary(nil, &Summary{First: 1, Last: 2})
			b[headerLen+8] = 2
			return b
		}(), ErrBadRange},
		{"request of node 0", []byte{Version, byte(MsgRequest), 0, 1, 0, 0, 0, 0}, ErrZeroNode},
		{"request unsorted", []byte{Version, byte(MsgRequest), 0, 2, 0, 0, 0, 2, 0, 0, 0, 1}, ErrOrder},
		{"request too many", []byte{Version, byte(MsgRequest), 0xff, 0xff}, ErrTooMany},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := ParseMessage(c.b); !errors.Is(err, c.err) {
				t.Fatalf("got %v, want %v", err, c.err)
			}
		})
	}
}

// FuzzRecord feeds arbitrary bytes to ParseMessage: it never panics, and
// whatever it accepts encodes back to the same bytes (one encoding per
// message), and a machine takes it without a fuss.
func FuzzRecord(f *testing.F) {
	r := sampleRecord()
	b, _ := AppendRecord(nil, &r)
	f.Add(b)
	b, _ = AppendRecord(nil, &Record{Origin: labKey(1), Seq: 1, Lifetime: 1})
	f.Add(b)
	b, _ = AppendSummary(nil, &Summary{First: 0, Last: ^NodeID(0), Final: true, Entries: []SummaryEntry{{3, 1}, {9, 2}}})
	f.Add(b)
	b, _ = AppendRequest(nil, []NodeID{3, 9})
	f.Add(b)
	f.Add([]byte{Version, byte(MsgRecord)})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMessage(data)
		if err != nil {
			return
		}
		var out []byte
		switch m.Type {
		case MsgRecord:
			out, err = AppendRecord(nil, &m.Record)
		case MsgSummary:
			out, err = AppendSummary(nil, &m.Summary)
		case MsgRequest:
			out, err = AppendRequest(nil, m.Request)
		}
		if err != nil || !bytes.Equal(out, data) {
			t.Fatalf("accepted %x, re-encoded %x, %v", data, out, err)
		}
		mc, _ := New(Config{Key: labKey(2)}, labEpoch)
		mc.AdjacencyUp(1, labKey(1), 10, labEpoch)
		mc.Receive(1, data, labEpoch)
		mc.Tick(labEpoch.Add(DefaultSyncTimeout))
	})
}

func TestHeaderRoundTrip(t *testing.T) {
	for _, h := range []Header{
		{HopLimit: 4, Ingress: 1, Egress: 0xffffffff},
		{Multi: true, HopLimit: 255, Ingress: 0x01020304},
		{HopLimit: 0, Ingress: 7, Egress: 8},
	} {
		var b [HeaderLen]byte
		h.Put(b[:])
		got, err := DecodeHeader(b[:])
		if err != nil || got != h {
			t.Errorf("%+v: got %+v, %v", h, got, err)
		}
	}
	for _, c := range []struct {
		name string
		b    []byte
		err  error
	}{
		{"short", make([]byte, HeaderLen-1), ErrHeaderShort},
		{"version 0", make([]byte, HeaderLen), ErrHeaderVersion},
		{"unknown flag", []byte{0x14, 1, 0, 0, 0, 1, 0, 0, 0, 2}, ErrHeaderVersion},
		{"old control flag", []byte{0x12, 1, 0, 0, 0, 1, 0, 0, 0, 0}, ErrHeaderVersion},
		{"a BPDU", []byte{0x01, 0x80, 0xc2, 0, 0, 0, 0x02, 0, 0, 1}, ErrHeaderVersion},
		{"a control frame", []byte{0x01, 0x80, 0xc2, 0, 0, 0x0f, 0x02, 0x6d, 0, 1}, ErrHeaderVersion},
		{"ingress 0", []byte{0x10, 1, 0, 0, 0, 0, 0, 0, 0, 2}, ErrHeaderNodes},
		{"unicast without egress", []byte{0x10, 1, 0, 0, 0, 1, 0, 0, 0, 0}, ErrHeaderNodes},
		{"multi with egress", []byte{0x11, 1, 0, 0, 0, 1, 0, 0, 0, 2}, ErrHeaderNodes},
	} {
		if _, err := DecodeHeader(c.b); !errors.Is(err, c.err) {
			t.Errorf("%s: %v, want %v", c.name, err, c.err)
		}
	}
}

func TestHeaderAllocatesNothing(t *testing.T) {
	buf := make([]byte, 64)
	h := Header{HopLimit: 9, Ingress: 3, Egress: 4}
	n := testing.AllocsPerRun(1000, func() {
		h.Put(buf)
		if _, err := DecodeHeader(buf); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Fatalf("%v allocations per encode+decode", n)
	}
}

func TestControlFrame(t *testing.T) {
	b := make([]byte, ControlHeaderLen+3)
	PutControlHeader(b, 0x0a0b0c0d, ControlMessage)
	copy(b[ControlHeaderLen:], "msg")
	from, kind, msg, err := DecodeControl(b)
	if err != nil || from != 0x0a0b0c0d || kind != ControlMessage || string(msg) != "msg" {
		t.Fatalf("got %v %v %q %v", from, kind, msg, err)
	}
	if b[0] != FirstByte || !IsControlFrame(b) {
		t.Fatalf("control frame starts % x", b[:6])
	}
	// Read as Ethernet: a reserved group destination, a unicast source.
	if b[0]&1 == 0 || b[6]&1 != 0 || [6]byte(b[6:12]) == [6]byte{} {
		t.Fatalf("addresses % x / % x", b[:6], b[6:12])
	}
	if _, err := DecodeHeader(b); err == nil {
		t.Fatal("a control frame decodes as a data header")
	}
	for _, c := range []struct {
		name string
		mod  func(b []byte) []byte
	}{
		{"short", func(b []byte) []byte { return b[:ControlHeaderLen-1] }},
		{"BPDU address", func(b []byte) []byte { b[5] = 0; return b }},
		{"other source", func(b []byte) []byte { b[7] = 0; return b }},
		{"other EtherType", func(b []byte) []byte { b[13] = 0; return b }},
		{"unknown kind", func(b []byte) []byte { b[14] = 2; return b }},
		{"node 0", func(b []byte) []byte { clear(b[8:12]); return b }},
	} {
		m := bytes.Clone(b)
		if _, _, _, err := DecodeControl(c.mod(m)); !errors.Is(err, ErrControlFrame) {
			t.Errorf("%s: %v, want ErrControlFrame", c.name, err)
		}
	}
}

func FuzzControlFrame(f *testing.F) {
	b := make([]byte, ControlHeaderLen+2)
	PutControlHeader(b, 9, ControlMismatch)
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		from, kind, msg, err := DecodeControl(data)
		if err != nil {
			return
		}
		out := make([]byte, ControlHeaderLen+len(msg))
		PutControlHeader(out, from, kind)
		copy(out[ControlHeaderLen:], msg)
		if !bytes.Equal(out, data) {
			t.Fatalf("decoded % x, re-encoded % x", data, out)
		}
	})
}
