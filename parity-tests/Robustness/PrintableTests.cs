using NUnit.Framework;
using ResnetMnist.Core;
using ResnetMnist.Outputs;

namespace ResnetMnist.ParityTests.Robustness;

/// <summary>
/// <see cref="Printable.Escape"/>, the one way text from files and child processes reaches the terminal, and the JSON
/// encoder the <c>--json</c> outputs rely on instead.
/// </summary>
[TestFixture, Category("Robustness")]
public sealed class PrintableTests
{
    [TestCase("\u001b[2J", @"\x1b[2J", TestName = "ESC (clear screen)")]
    [TestCase("\u001b]0;title\u0007", @"\x1b]0;title\x07", TestName = "OSC window title ended by BEL")]
    [TestCase("\u001b]52;c;ZWNobw==\u001b\\", @"\x1b]52;c;ZWNobw==\x1b\", TestName = "OSC 52 clipboard write ended by ST")]
    [TestCase("a\nerror: injected", @"a\nerror: injected", TestName = "newline")]
    [TestCase("a\rb\tc", @"a\rb\tc", TestName = "carriage return and tab")]
    [TestCase("\u009b31m", @"\x9b31m", TestName = "C1 CSI")]
    [TestCase("\u007f\u0000", @"\x7f\x00", TestName = "DEL and NUL")]
    [TestCase("abc\u202eexe.png", @"abc\u202eexe.png", TestName = "bidi override")]
    [TestCase("x\u2028y\u2029z", @"x\u2028y\u2029z", TestName = "line and paragraph separators")]
    [TestCase("\ufeffhidden\u2066", @"\ufeffhidden\u2066", TestName = "BOM and bidi isolate")]
    public void Escapes_every_control_and_reordering_character(string raw, string shown)
    {
        var escaped = Printable.Escape(raw);
        Assert.That(escaped, Is.EqualTo(shown));
        Assert.That(escaped.Any(c => char.IsControl(c) || c is '\u202e' or '\u2028' or '\u2029' or '\ufeff' or '\u2066'), Is.False, escaped);
    }

    [TestCase("/home/user/runs/my run/checkpoints/best.pt")]
    [TestCase(@"C:\weights\resnet18.pth")]
    [TestCase("layer1.0.conv1.weight 64×3×7×7 → float32, é, 数字")]
    [TestCase("")]
    public void Leaves_printable_text_as_it_is(string text) =>
        Assert.That(Printable.Escape(text), Is.SameAs(text), "printable text is returned unchanged, not copied");

    [Test]
    public void Null_is_shown_as_nothing() => Assert.That(Printable.Escape(null), Is.EqualTo(""));

    [Test]
    public void Caps_the_length_and_says_how_much_was_left_out()
    {
        var escaped = Printable.Escape(new string('a', 1000) + "\u001b", maxChars: 10);
        Assert.That(escaped, Is.EqualTo("aaaaaaaaaa…(991 more characters)"));
        Assert.That(Printable.Escape(new string('b', Printable.DefaultMaxChars)), Has.Length.EqualTo(Printable.DefaultMaxChars), "exactly at the cap: whole");
        Assert.That(Printable.Escape(new string('b', Printable.DefaultMaxChars + 1)), Does.EndWith("…(1 more characters)"));
    }

    [Test]
    public void Escaping_twice_changes_nothing_more()
    {
        const string raw = "\u001b]0;x\u0007\n\u202e";
        Assert.That(Printable.Escape(Printable.Escape(raw)), Is.EqualTo(Printable.Escape(raw)));
    }

    /// <summary>
    /// The <c>--json</c> outputs (evaluate, predict, info, weights inspect) are written by <see cref="RunDirectory.SummaryJson"/>
    /// with System.Text.Json's default encoder: control characters, C1, bidi overrides and separators come out as
    /// <c>\uXXXX</c> escapes, so no raw byte of them reaches the terminal there either.
    /// </summary>
    [Test]
    public void Json_outputs_escape_control_characters_too()
    {
        var json = RunDirectory.SummaryJson(new { Checkpoint = "a\u001b]52;c;AAAA\u0007\nb\u009b\u202e\u2028\ufeff" });
        Assert.That(json.Where(c => c != '\n' && c != '\r').Any(c => char.IsControl(c) || c is '\u202e' or '\u2028' or '\ufeff'), Is.False, json);
        Assert.That(json, Does.Contain(@"\u001B]52;c;AAAA\u0007\nb\u009B\u202E\u2028\uFEFF"));
    }
}
