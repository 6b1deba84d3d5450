#include "ticks.h"

#include <math.h>
#include <string.h>

/* splitmix64: tiny, stateless-seedable PRNG; quality is ample for jitter. */
static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double unit(uint64_t *s)
{
    return (double)(splitmix64(s) >> 11) * 0x1.0p-53;
}

/* Seeded per symbol and minute so a tick never depends on which rows were
 * read before it (--limit, sliced files and re-runs give identical ticks). */
static uint64_t seed_for(const symbol *sym, int64_t ts)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const char *p = sym->token; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h ^ (uint64_t)ts;
}

/* The usual OHLC path assumption: a bullish minute dips to its low before
 * rallying to its high, a bearish one the reverse. */
static void ohlc_path(const candle *c, double v[4])
{
    bool up = c->close >= c->open;
    v[0] = c->open;
    v[1] = up ? c->low : c->high;
    v[2] = up ? c->high : c->low;
    v[3] = c->close;
}

/* Tick indices at which the path vertices are reached, proportional to the
 * distance travelled, but each non-empty leg gets at least one step so the
 * high and the low are actually quoted. Needs k >= 4. */
static void vertex_indices(const double v[4], int k, int idx[4])
{
    double leg[3], total = 0;
    for (int i = 0; i < 3; i++) {
        leg[i] = fabs(v[i + 1] - v[i]);
        total += leg[i];
    }
    idx[0] = 0;
    idx[3] = k - 1;
    if (total <= 0) {
        idx[1] = idx[2] = 0;
        return;
    }
    int last = k - 1;
    int i1 = (int)lround(leg[0] / total * last);
    int i2 = (int)lround((leg[0] + leg[1]) / total * last);
    int min1 = leg[0] > 0 ? 1 : 0;
    if (i1 < min1)
        i1 = min1;
    if (i2 < i1 + (leg[1] > 0 ? 1 : 0))
        i2 = i1 + (leg[1] > 0 ? 1 : 0);
    int max2 = last - (leg[2] > 0 ? 1 : 0);
    if (i2 > max2)
        i2 = max2;
    if (i1 > i2 - (leg[1] > 0 ? 1 : 0))
        i1 = i2 - (leg[1] > 0 ? 1 : 0);
    idx[1] = i1;
    idx[2] = i2;
}

static double price_on_path(const double v[4], const int idx[4], int i)
{
    for (int seg = 0; seg < 3; seg++) {
        if (i > idx[seg + 1] || idx[seg + 1] == idx[seg])
            continue;
        double f = (double)(i - idx[seg]) / (double)(idx[seg + 1] - idx[seg]);
        return v[seg] + (v[seg + 1] - v[seg]) * f;
    }
    return v[3];
}

/* For k < 4 the vertices cannot all be visited: sample the path evenly. */
static double price_by_distance(const double v[4], double frac)
{
    double total = 0, leg[3];
    for (int i = 0; i < 3; i++) {
        leg[i] = fabs(v[i + 1] - v[i]);
        total += leg[i];
    }
    double d = frac * total;
    for (int i = 0; i < 3; i++) {
        if (d <= leg[i] && leg[i] > 0)
            return v[i] + (v[i + 1] - v[i]) * (d / leg[i]);
        d -= leg[i];
    }
    return v[3];
}

/* A spread relative to the price, 0.1 to 2 basis points of it, skewed towards tight
 * spreads like a liquid market: a fixed pip would give gold at 2,641 the spread of
 * EUR/USD at 1.10. Never below one point, so ask > bid. */
#define SPREAD_MIN_BP 0.1
#define SPREAD_MAX_BP 2.0

static int64_t spread_points(const symbol *sym, double price, uint64_t *rng)
{
    double u = unit(rng) * unit(rng);
    double bp = SPREAD_MIN_BP + u * (SPREAD_MAX_BP - SPREAD_MIN_BP);
    int64_t pts = price_to_points(sym, price * bp * 1e-4);
    return pts > 0 ? pts : 1;
}

bool ticks_from_m1(const symbol *sym, const candle *c, int k, tick *out)
{
    uint64_t rng = seed_for(sym, c->ts);
    double v[4];
    int idx[4];
    ohlc_path(c, v);
    if (k >= 4)
        vertex_indices(v, k, idx);
    for (int i = 0; i < k; i++) {
        /* slot i covers [i*60000/k, (i+1)*60000/k): jitter stays inside it,
         * so times are strictly increasing and within the minute */
        int64_t start = (int64_t)i * 60000 / k;
        int64_t width = (int64_t)(i + 1) * 60000 / k - start;
        int64_t jitter = width > 1 ? (int64_t)(splitmix64(&rng) % (uint64_t)width) : 0;
        double price = k >= 4 ? price_on_path(v, idx, i)
                              : price_by_distance(v, k == 1 ? 1.0 : (double)i / (k - 1));
        int64_t bid_pts = price_to_points(sym, price);
        int64_t spr_pts = spread_points(sym, price, &rng);
        if (bid_pts <= 0)
            return false;
        out[i].ts = c->ts + start + jitter;
        out[i].bid = points_to_price(sym, bid_pts);
        out[i].ask = points_to_price(sym, bid_pts + spr_pts);
        out[i].spread = points_to_price(sym, spr_pts);
    }
    return true;
}
