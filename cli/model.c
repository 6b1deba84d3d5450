#include "model.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double pow10_tab[] = {1, 10, 100, 1000, 10000, 100000, 1000000};

bool symbol_parse(const char *s, symbol *out)
{
    dm_err err = {0};
    if (dm_symbol_normalize(s, out->name, out->token, "--symbol", &err) != DM_OK) {
        fprintf(stderr, "dmctl: %s\n", err.message);
        return false;
    }
    bool jpy = strstr(out->token, "JPY") != NULL;
    out->decimals = jpy ? 3 : 5;
    out->pip = jpy ? 0.01 : 0.0001;
    return true;
}

bool timeframe_parse(const char *tf, int64_t *period_ms)
{
    dm_tf t;
    if (!dm_tf_parse(tf, &t))
        return false;
    *period_ms = t == DM_TF_1W ? 0 : dm_tf_ms(t);
    return true;
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
