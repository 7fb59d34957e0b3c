using System.Buffers.Binary;
using NUnit.Framework;
using ResnetMnist.Config;
using ResnetMnist.Outputs;

namespace ResnetMnist.ParityTests.Training;

/// <summary>
/// <c>train.tensorboard</c>: the event files are TensorBoard's TFRecord format (length, masked CRC-32C of the length,
/// an <c>Event</c> protobuf, masked CRC-32C of the data: checked here as TensorBoard's reader checks them) and hold
/// exactly the run's losses, learning rates and accuracies.
/// </summary>
[TestFixture, Category("Tool")]
public sealed class TensorBoardTests
{
    static uint Crc32C(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (var b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78 : crc >> 1;
        }
        return ~crc;
    }

    static uint Masked(uint crc) => ((crc >> 15) | (crc << 17)) + 0xA282EAD8;

    /// <summary>Every (tag, step, value) of an event file, after checking each record's framing and checksums.</summary>
    static List<(string Tag, long Step, float Value)> Read(string file)
    {
        var bytes = File.ReadAllBytes(file);
        var scalars = new List<(string, long, float)>();
        int at = 0, records = 0;
        while (at < bytes.Length)
        {
            var header = bytes.AsSpan(at, 8);
            ulong length = BinaryPrimitives.ReadUInt64LittleEndian(header);
            Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 8, 4)), Is.EqualTo(Masked(Crc32C(header))), $"{file}: length CRC of record {records}");
            var data = bytes.AsSpan(at + 12, (int)length);
            Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 12 + (int)length, 4)), Is.EqualTo(Masked(Crc32C(data))), $"{file}: data CRC of record {records}");
            var e = Tensorboard.Event.Parser.ParseFrom(data.ToArray());
            if (e.Summary is not null)
                foreach (var v in e.Summary.Value) scalars.Add((v.Tag, e.Step, v.SimpleValue));
            at += 12 + (int)length + 4;
            records++;
        }
        Assert.That(records, Is.GreaterThan(0));
        return scalars;
    }

    [Test]
    public void Event_files_hold_the_runs_losses_and_accuracies_and_force_replaces_them()
    {
        var dir = TempDir.New("tensorboard");
        var cfg = ConfigLoader.Parse(Tool.SmallConfig(epochs: 2), Path.Combine(dir, "config.yaml"), ["train.tensorboard=true"]);
        var run = Path.Combine(dir, "run");
        var result = LibraryRun.Run(cfg, run);
        var files = Directory.GetFiles(Path.Combine(run, RunDirectory.TensorBoardFolder));
        Assert.That(files, Has.Length.EqualTo(1));
        Assert.That(Path.GetFileName(files[0]), Does.StartWith(RunDirectory.TensorBoardPrefix));
        var scalars = Read(files[0]);

        var losses = scalars.Where(s => s.Tag == "train/loss").ToList();
        Assert.That(losses.Select(s => s.Step), Is.EqualTo(result.Steps.Select(s => s.Step)));
        Assert.That(losses.Select(s => s.Value), Is.EqualTo(result.Steps.Select(s => (float)s.Loss)));
        Assert.That(scalars.Where(s => s.Tag == "train/lr").Select(s => s.Value), Is.EqualTo(result.Steps.Select(s => (float)s.Lr)));
        var accuracy = scalars.Where(s => s.Tag == "epoch/test_accuracy").ToList();
        Assert.That(accuracy.Select(s => s.Step), Is.EqualTo(new long[] { 1, 2 }));
        Assert.That(accuracy.Select(s => s.Value), Is.EqualTo(result.Epochs.Select(e => (float)e.TestAccuracy)));
        Assert.That(scalars.Where(s => s.Tag == "epoch/test_loss").Select(s => s.Value), Is.EqualTo(result.Epochs.Select(e => (float)e.TestLoss)));
        Assert.That(scalars.Where(s => s.Tag == "epoch/train_loss").Select(s => s.Value), Is.EqualTo(result.Epochs.Select(e => (float)e.TrainLoss)));

        // --force replaces the run: the old event file goes with the other files the tool wrote; a user's file stays.
        File.WriteAllText(Path.Combine(run, RunDirectory.TensorBoardFolder, "notes.txt"), "mine");
        LibraryRun.Run(cfg, run, force: true);
        var after = Directory.GetFiles(Path.Combine(run, RunDirectory.TensorBoardFolder)).Select(Path.GetFileName).ToList();
        Assert.That(after, Has.Count.EqualTo(2).And.Contain("notes.txt").And.Not.Contain(Path.GetFileName(files[0])));
    }

    [Test]
    public void Off_by_default_writes_no_event_files()
    {
        var dir = TempDir.New("tensorboard-off");
        var cfg = ConfigLoader.Parse(Tool.SmallConfig(), Path.Combine(dir, "config.yaml"));
        LibraryRun.Run(cfg, Path.Combine(dir, "run"));
        Assert.That(Directory.Exists(Path.Combine(dir, "run", RunDirectory.TensorBoardFolder)), Is.False);
    }
}
