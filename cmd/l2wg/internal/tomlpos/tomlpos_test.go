package tomlpos

import "testing"

func TestKeyLines(t *testing.T) {
	doc := "a = 1\n\n[tap]\nname = \"x\"\n[[peer]]\nk = 1\n[[peer]]\n# c\nk = 2\nx.y = 3\n"
	got, err := KeyLines([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"a": 1, "tap": 3, "tap.name": 4, "peer[1]": 5, "peer[1].k": 6, "peer[2]": 7, "peer[2].k": 9, "peer[2].x.y": 10}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("line of %s = %d, want %d", k, got[k], v)
		}
	}
	if _, err := KeyLines([]byte("[tap\n")); err == nil {
		t.Error("no error for a syntax error")
	}
}
