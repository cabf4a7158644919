//! Exact decimal arithmetic as `github.com/shopspring/decimal` does it for sprig's `addf`,
//! `subf`, `mulf` and `divf`.
//!
//! Sprig converts every operand with `decimal.NewFromFloat` (the shortest decimal that
//! round-trips the float), adds/subtracts/multiplies exactly, divides to 16 decimal places
//! (rounding half away from zero), and converts back with `Float64()` (nearest float). This is
//! why `addf 0.1 0.2` prints `0.3`, not `0.30000000000000004`. A value is `coef × 10^exp`.

use num_bigint::BigInt;

/// `decimal.DivisionPrecision`.
const DIVISION_PRECISION: i64 = 16;

/// A decimal number `coef × 10^exp`.
#[derive(Debug, Clone)]
pub(crate) struct Decimal {
    coef: BigInt,
    exp: i64,
}

fn pow10(n: i64) -> BigInt {
    // Exponents come from float64 conversions and are bounded (|exp| < ~400 per operand),
    // but products of many operands grow; cap to keep memory bounded.
    BigInt::from(10u32).pow(u32::try_from(n.clamp(0, 100_000)).unwrap_or(0))
}

impl Decimal {
    /// `decimal.NewFromFloat`; `Err` carries Go's panic text for NaN and infinities.
    pub(crate) fn from_f64(f: f64) -> Result<Decimal, String> {
        if f.is_nan() || f.is_infinite() {
            return Err(format!(
                "Cannot create a Decimal from {}",
                crate::gofmt::format_float(f, 'g', -1)
            ));
        }
        if f == 0.0 {
            return Ok(Decimal {
                coef: BigInt::from(0),
                exp: 0,
            });
        }
        let s = format!("{:e}", f.abs());
        let (mant, e) = s.split_once('e').unwrap_or((s.as_str(), "0"));
        let e: i64 = e.parse().unwrap_or(0);
        let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
        let frac_len = mant.split_once('.').map_or(0, |(_, f)| f.len()) as i64;
        let mut coef: BigInt = digits.parse().unwrap_or_default();
        if f < 0.0 {
            coef = -coef;
        }
        Ok(Decimal {
            coef,
            exp: e - frac_len,
        })
    }

    fn rescale(&self, exp: i64) -> BigInt {
        if exp >= self.exp {
            self.coef.clone()
        } else {
            &self.coef * pow10(self.exp - exp)
        }
    }

    pub(crate) fn add(&self, o: &Decimal) -> Decimal {
        let exp = self.exp.min(o.exp);
        Decimal {
            coef: self.rescale(exp) + o.rescale(exp),
            exp,
        }
    }

    pub(crate) fn sub(&self, o: &Decimal) -> Decimal {
        let exp = self.exp.min(o.exp);
        Decimal {
            coef: self.rescale(exp) - o.rescale(exp),
            exp,
        }
    }

    pub(crate) fn mul(&self, o: &Decimal) -> Decimal {
        Decimal {
            coef: &self.coef * &o.coef,
            exp: self.exp + o.exp,
        }
    }

    /// `Decimal.Div`: `DivRound(d2, 16)`; `Err` is Go's panic text for a zero divisor.
    pub(crate) fn div(&self, o: &Decimal) -> Result<Decimal, String> {
        use num_bigint::Sign;
        if o.coef.sign() == Sign::NoSign {
            return Err("decimal division by 0".into());
        }
        let precision = DIVISION_PRECISION;
        // QuoRem: q = trunc(self / o) at scale 10^-precision.
        let scale = -precision;
        let e = self.exp - o.exp - scale;
        let (aa, bb) = if e < 0 {
            (self.coef.clone(), &o.coef * pow10(-e))
        } else {
            (&self.coef * pow10(e), o.coef.clone())
        };
        let q = &aa / &bb;
        let r = &aa - &q * &bb;
        // Round half away from zero: compare 2|r| with |bb|.
        let r2 = r.magnitude() * 2u32;
        let mut q = q;
        if r2 >= *bb.magnitude() {
            if (self.coef.sign() == Sign::Minus) != (o.coef.sign() == Sign::Minus) {
                q -= 1;
            } else {
                q += 1;
            }
        }
        Ok(Decimal {
            coef: q,
            exp: scale,
        })
    }

    /// `Decimal.Float64()`: the nearest float64.
    pub(crate) fn to_f64(&self) -> f64 {
        let text = format!("{}e{}", self.coef, self.exp);
        text.parse::<f64>().unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(f: f64) -> Decimal {
        Decimal::from_f64(f).unwrap()
    }

    #[test]
    fn exact_like_shopspring() {
        assert_eq!(d(0.1).add(&d(0.2)).to_f64(), 0.3);
        assert_eq!(d(1.5).add(&d(1.0)).to_f64(), 2.5);
        // Loki's "mathfloat" case: addf .foo 1.5 | subf .bar 1.5 | mulf .baz | divf .bazz
        let a = d(0.0).add(&d(1.5)).add(&d(1.5));
        let b = d(5.0).sub(&d(1.5)).sub(&d(a.to_f64()));
        let c = d(10.5).mul(&d(b.to_f64()));
        let r = d(20.2).div(&d(c.to_f64())).unwrap();
        assert_eq!(
            crate::gofmt::format_float(r.to_f64(), 'g', -1),
            "3.8476190476190477"
        );
        assert_eq!(d(1.0).div(&d(3.0)).unwrap().to_f64(), 0.3333333333333333);
        assert_eq!(d(2.0).div(&d(3.0)).unwrap().to_f64(), 0.6666666666666667);
        assert_eq!(d(-2.0).div(&d(3.0)).unwrap().to_f64(), -0.6666666666666667);
        assert!(d(1.0).div(&d(0.0)).is_err());
        assert!(Decimal::from_f64(f64::NAN).is_err());
        assert_eq!(d(1e300).mul(&d(1e300)).to_f64(), f64::INFINITY);
    }
}
