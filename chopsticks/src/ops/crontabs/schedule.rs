//! Cron schedules, checked before anything runs: five fields (minute,
//! hour, day of month, month, day of week) or one of cron's special words.

/// The longest schedule taken, in bytes.
pub(super) const MAX_SCHEDULE: usize = 256;

/// The words cron takes in place of the five fields.
pub(super) const SPECIAL: [&str; 8] = [
    "@reboot",
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
];

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// A field: its name, its smallest and largest number, and the names it
/// takes for single values (month and day-of-week names).
struct Field {
    name: &'static str,
    low: u32,
    high: u32,
    names: &'static [&'static str],
}

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        low: 0,
        high: 59,
        names: &[],
    },
    Field {
        name: "hour",
        low: 0,
        high: 23,
        names: &[],
    },
    Field {
        name: "day of month",
        low: 1,
        high: 31,
        names: &[],
    },
    Field {
        name: "month",
        low: 1,
        high: 12,
        names: &MONTHS,
    },
    Field {
        name: "day of week",
        low: 0,
        high: 7,
        names: &DAYS,
    },
];

/// `schedule` as a crontab line writes it (its fields joined by one
/// space), or what is wrong with it, naming the field.
pub(super) fn check(schedule: &str) -> Result<String, String> {
    if schedule.len() > MAX_SCHEDULE {
        return Err(format!(
            "the schedule is {} bytes long, more than the {MAX_SCHEDULE} a schedule may be",
            schedule.len()
        ));
    }
    let fields: Vec<&str> = schedule.split_ascii_whitespace().collect();
    if let [word] = fields.as_slice() {
        if word.starts_with('@') {
            return match SPECIAL.contains(word) {
                true => Ok((*word).to_owned()),
                false => Err(format!(
                    "the schedule {word:?} is not one cron knows: give five fields or one of {}",
                    SPECIAL.join(" ")
                )),
            };
        }
    }
    if fields.len() != 5 {
        return Err(format!(
            "the schedule {schedule:?} has {} fields: give five (minute hour day-of-month \
             month day-of-week, e.g. \"*/5 * * * *\") or one of {}",
            fields.len(),
            SPECIAL.join(" ")
        ));
    }
    for (text, field) in fields.iter().zip(&FIELDS) {
        check_field(text, field).map_err(|why| {
            format!(
                "the {} field {text:?} of the schedule {schedule:?}: {why}",
                field.name
            )
        })?;
    }
    Ok(fields.join(" "))
}

/// Checks one field: a list of `*`, `N`, `a-b`, `*/n`, `a-b/n`, or a
/// single name.
fn check_field(text: &str, field: &Field) -> Result<(), String> {
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (item, None),
        };
        if let Some(step) = step {
            let digits = (1..=2).contains(&step.len()) && step.bytes().all(|b| b.is_ascii_digit());
            let n: u32 = step.parse().unwrap_or(0);
            if !digits || n == 0 || n > field.high {
                return Err(format!(
                    "the step /{step} is not between 1 and {}",
                    field.high
                ));
            }
        }
        match range.split_once('-') {
            _ if range == "*" => {}
            Some((a, b)) => {
                let (a, b) = (number(a, field)?, number(b, field)?);
                if a > b {
                    return Err(format!(
                        "the range {a}-{b} runs backwards: write the smaller number first"
                    ));
                }
            }
            None if step.is_some() => {
                return Err(format!(
                    "a step (/n) follows `*` or a range a-b, not {range:?}"
                ))
            }
            None if item.is_empty() => {
                return Err("an empty item in the list: write items between commas".into())
            }
            None => {
                let named = field.names.iter().any(|n| n.eq_ignore_ascii_case(range));
                if !named {
                    number(range, field)?;
                }
            }
        }
    }
    Ok(())
}

/// A number of the field, within its range.
fn number(text: &str, field: &Field) -> Result<u32, String> {
    let names = match field.names {
        [] => String::new(),
        names => format!(
            " (or, alone, a name: {}, ...; not in a range or a list's range)",
            names[..3].join(", ")
        ),
    };
    let valid = !text.is_empty() && text.len() <= 2 && text.bytes().all(|b| b.is_ascii_digit());
    match text.parse::<u32>() {
        Ok(n) if valid && (field.low..=field.high).contains(&n) => Ok(n),
        Ok(n) if valid => Err(format!("{n} is out of range {}-{}", field.low, field.high)),
        _ => Err(format!(
            "{text:?} is not a number from {} to {}{names}, `*`, a range a-b, a step */n or a-b/n",
            field.low, field.high
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_cron_takes_are_taken_and_written_with_single_spaces() {
        for (given, written) in [
            ("* * * * *", "* * * * *"),
            ("*/5  *\t* * *", "*/5 * * * *"),
            ("0 3 * * 1-5", "0 3 * * 1-5"),
            (
                "0,15,30,45 0-23/2 1,15 jan sun",
                "0,15,30,45 0-23/2 1,15 jan sun",
            ),
            ("59 23 31 12 7", "59 23 31 12 7"),
            ("0 0 1 DEC Mon", "0 0 1 DEC Mon"),
            ("*/1 */23 */31 */12 */7", "*/1 */23 */31 */12 */7"),
            ("  @daily ", "@daily"),
        ] {
            assert_eq!(check(given).as_deref(), Ok(written), "{given:?}");
        }
        for word in SPECIAL {
            assert_eq!(check(word).as_deref(), Ok(word));
        }
    }

    #[test]
    fn other_schedules_are_refused_naming_the_field() {
        for (bad, says) in [
            ("60 * * * *", "the minute field \"60\""),
            ("* 24 * * *", "\"* 24 * * *\": 24 is out of range 0-23"),
            ("* * 0 * *", "day of month field \"0\" of"),
            ("* * * 13 * ", "month field \"13\""),
            ("* * * * 8", "day of week field \"8\""),
            ("* * * * mon-fri", "day of week field"),
            ("* * * foo *", "month field \"foo\""),
            ("*/0 * * * *", "the step /0 is not between 1 and 59"),
            ("*/60 * * * *", "the step /60 is not between 1 and 59"),
            ("* * */0 * *", "the step /0 is not between 1 and 31"),
            ("* * * * */x", "the step /x"),
            ("5/2 * * * *", "a step (/n) follows"),
            ("5-2 * * * *", "runs backwards"),
            ("1,,2 * * * *", "an empty item"),
            ("-1 * * * *", "minute field"),
            ("+1 * * * *", "minute field"),
            ("001 * * * *", "minute field"),
            ("* * * *", "has 4 fields"),
            ("* * * * * *", "has 6 fields"),
            ("", "has 0 fields"),
            ("@often", "not one cron knows"),
            ("@daily extra", "has 2 fields"),
        ] {
            let e = check(bad).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
        let long = "1,".repeat(200) + "1 * * * *";
        assert!(check(&long).unwrap_err().contains("more than the 256"));
    }
}
