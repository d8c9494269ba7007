package buildkit

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestHostsSplitsTheListDroppingBlanksAndRepeats(t *testing.T) {
	got := Hosts(" unix:///a.sock, ,tcp://b:1234,unix:///a.sock ")
	if !slices.Equal(got, []string{"unix:///a.sock", "tcp://b:1234"}) {
		t.Fatalf("%q", got)
	}
}

func TestARepositoryKeepsItsDaemonAndOnlyTheGoneDaemonsRepositoriesMove(t *testing.T) {
	hosts := []string{"tcp://a:1", "tcp://b:1", "tcp://c:1"}
	farm := func(hosts ...string) *Farm {
		f := &Farm{}
		for _, h := range hosts {
			f.Daemons = append(f.Daemons, Daemon{Host: h})
		}
		return f
	}
	all, withoutB := farm(hosts...), farm("tcp://a:1", "tcp://c:1")
	perDaemon := map[string]int{}
	for i := range 300 {
		repo := fmt.Sprintf("127.0.0.1:5000/runtime/app%d", i)
		first := all.Order(repo)[0].Host
		if again := farm(hosts[2], hosts[0], hosts[1]).Order(repo)[0].Host; again != first {
			t.Fatalf("%s goes to %s, and to %s when the list is in another order", repo, first, again)
		}
		perDaemon[first]++
		if moved := withoutB.Order(repo)[0].Host; first != "tcp://b:1" && moved != first {
			t.Fatalf("%s moved from %s to %s when b went away", repo, first, moved)
		}
		if order := all.Order(repo); len(order) != 3 || order[1].Host == first {
			t.Fatalf("the order of %s is %v", repo, order)
		}
	}
	for _, h := range hosts {
		if perDaemon[h] < 60 { // 100 each on average
			t.Fatalf("repositories per daemon %v: %s gets too few", perDaemon, h)
		}
	}
}

func TestASilentDaemonIsTriedLastForAWhileThenInItsPlaceAgain(t *testing.T) {
	now := time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)
	f := &Farm{Daemons: []Daemon{{Host: "tcp://a:1"}, {Host: "tcp://b:1"}, {Host: "tcp://c:1"}}, now: func() time.Time { return now }}
	key := "127.0.0.1:5000/farm/app"
	first := f.Order(key)
	f.heard(first[0], false)
	if got := f.tryOrder(key); got[2] != first[0] || got[0] != first[1] || got[1] != first[2] {
		t.Fatalf("with %s silent: %v, want it last and the others in their order %v", first[0].Host, got, first)
	}
	now = now.Add(silentFor)
	if got := f.tryOrder(key); !slices.Equal(got, first) {
		t.Fatalf("after %s: %v, want the repository's own order %v", silentFor, got, first)
	}
	f.heard(first[0], false)
	f.heard(first[0], true)
	if got := f.tryOrder(key); !slices.Equal(got, first) {
		t.Fatalf("once it answered: %v, want %v", got, first)
	}
}
