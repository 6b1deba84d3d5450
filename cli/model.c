#include "model.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double pow10_tab[] = {1, 10, 100, 1000, 10000, 100000, 1000000};

static bool all_alpha(const char *s)
{
    for (; *s; s++)
        if (!isalpha((unsigned char)*s))
            return false;
    return true;
}

static bool bad_symbol(const char *s)
{
    fprintf(stderr, "dmctl: invalid symbol '%s' (expected e.g. EUR/USD)\n", s);
    return false;
}

bool symbol_parse(const char *s, symbol *out)
{
    size_t n = strlen(s), t = 0;
    int slashes = 0;
    if (n == 0 || n >= sizeof out->name)
        return bad_symbol(s);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '/') {
            slashes++;
            continue;
        }
        /* anything else would break the subject token (., *, >, spaces) */
        if (!isalnum((unsigned char)s[i]))
            return bad_symbol(s);
        out->token[t++] = s[i];
    }
    if (slashes > 1 || t == 0)
        return bad_symbol(s);
    out->token[t] = '\0';
    /* normalise "eurusd"/"EURUSD" to the contract's "EUR/USD" form */
    for (size_t i = 0; i < t; i++)
        out->token[i] = (char)toupper((unsigned char)out->token[i]);
    if (slashes == 0 && t == 6 && all_alpha(out->token))
        snprintf(out->name, sizeof out->name, "%.3s/%.3s", out->token, out->token + 3);
    else
        for (size_t i = 0; i <= n; i++)
            out->name[i] = (char)toupper((unsigned char)s[i]);
    bool jpy = strstr(out->token, "JPY") != NULL;
    out->decimals = jpy ? 3 : 5;
    out->pip = jpy ? 0.01 : 0.0001;
    return true;
}

bool timeframe_parse(const char *tf, int64_t *period_ms)
{
    char *end;
    long n = strtol(tf, &end, 10);
    if (end == tf || n <= 0 || n > 100000 || end[0] == '\0' || end[1] != '\0')
        return false;
    switch (end[0]) {
    case 's': *period_ms = n * 1000LL; return true;
    case 'm': *period_ms = n * 60000LL; return true;
    case 'h': *period_ms = n * 3600000LL; return true;
    case 'd': *period_ms = n * 86400000LL; return true;
    /* weeks and months start on calendar boundaries the client does not
     * second-guess: no alignment check */
    case 'w': *period_ms = 0; return true;
    case 'M': *period_ms = 0; return true;
    default: return false;
    }
}

int64_t price_to_points(const symbol *sym, double price)
{
    return llround(price * pow10_tab[sym->decimals]);
}

double points_to_price(const symbol *sym, int64_t points)
{
    /* a correctly rounded division gives the double nearest the decimal */
    return (double)points / pow10_tab[sym->decimals];
}
